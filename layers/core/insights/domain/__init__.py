"""Pure domain logic: no AWS, no I/O. Everything here is unit-testable alone."""
