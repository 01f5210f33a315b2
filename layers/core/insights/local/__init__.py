"""The local stack: the real handlers on moto, wired from template.yaml."""
