"""XML as SAML needs it, parsed without the usual XML attacks.

lxml's parser is told to resolve no entities, load no DTD and touch no
network, and to refuse huge trees; a document that still declares a DTD
(internal or external) or holds an entity reference is refused outright, so
no billion-laughs expansion, external entity (XXE) or parameter entity can
matter. signxml parses with the same parser and makes the same checks again.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}


class UnsafeXml(ValueError):
    """Not XML, or XML this service refuses to read (a DTD, an entity)."""


def safe_parser() -> Any:
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_xml(data: bytes) -> Any:
    """The root element of a document; UnsafeXml if it is malformed or declares a DTD."""
    try:
        root = etree.fromstring(data, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"is not well-formed XML: {exc}") from None
    if root is None:
        raise UnsafeXml("is empty")
    info = root.getroottree().docinfo
    if info.internalDTD is not None or info.externalDTD is not None or info.doctype:
        raise UnsafeXml("declares a DTD (<!DOCTYPE>), which is refused")
    if next(root.iter(etree.Entity), None) is not None:
        raise UnsafeXml("holds an entity reference, which is refused")
    return root


def text_of(element: Any) -> str:
    """The XPath string value: every descendant text node joined, comments left out.

    ``element.text`` would stop at a comment: ``ann@example.com<!---->.evil``
    would read as ``ann@example.com`` (the 2018 comment-truncation attacks).
    """
    return str(element.xpath("string()"))
