"""A small City database in MaxMind's format, for tests and the local stack.

The networks and places are the ones MaxMind's own test databases use, so
an address that resolves here resolves to the same place in a real
GeoLite2-City database.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_PLACES: dict[str, tuple[str, str, str, str | None, str | None]] = {
    # network: (ISO code, country, region ISO, region, city)
    "81.2.69.0/24": ("GB", "United Kingdom", "ENG", "England", "London"),
    "2.125.160.216/29": ("GB", "United Kingdom", "WBK", "West Berkshire", "Boxford"),
    "89.160.20.0/24": ("SE", "Sweden", "E", "Östergötland County", "Linköping"),
    "216.160.83.56/29": ("US", "United States", "WA", "Washington", "Milton"),
    "175.16.199.0/24": ("CN", "China", "22", "Jilin Sheng", "Changchun"),
    "202.196.224.0/20": ("PH", "Philippines", None, None, None),
    "2a02:cf40::/29": ("NO", "Norway", None, None, None),
}


def build(path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="GeoLite2-City",
        languages=["en"],
        description={"en": "Insights sample City database (MaxMind test networks)"},
    )
    for network, (iso, country, region_iso, region, city) in SAMPLE_PLACES.items():
        record: dict = {"country": {"iso_code": iso, "names": {"en": country}}}
        if region:
            record["subdivisions"] = [{"iso_code": region_iso, "names": {"en": region}}]
        if city:
            record["city"] = {"names": {"en": city}}
        writer.insert_network(IPSet([network]), record)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.to_db_file(str(path))
    return path
