"""STAC catalogue of a release (`stac/`): one collection, one item per chip with the label extension.

Layout (self-contained: every href is relative, no self links, so the folder works wherever the release is copied):

    stac/collection.json            the collection `cropharmony-<version>`, one `item` link per chip
    stac/<source>/<chip_id>.json    item `<source>-<chip_id>` (chip ids are unique within a source only); its assets
                                    `image` and `labels`: ../../chips/<source>/{images,labels}/<chip_id>.tif

STAC (https://stacspec.org) is what geospatial catalogues and clients (stac-browser, pystac, odc-stac) read. Each item
carries its chip's footprint in WGS84 and, through the label extension, its per-class pixel counts, so a client can
find chips of a class in a region without opening a raster.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pystac
from pystac.layout import CustomLayoutStrategy
from rasterio.warp import transform_geom

from curation.core.io import stage_output
from curation.core.schemas import class_column
from curation.publish.croissant import KEYWORDS, full_description, spdx_licence
from curation.publish.info import CHIPS, MANIFEST, STAC_COLLECTION, STAC_DIR, ReleaseInfo

# pystac 1.15 deprecates its label extension (the extension is "pilot" and unmaintained), yet it is still the STAC way
# to publish the per-class counts of label rasters: import it without the warning.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The PySTAC Label Extension is deprecated", DeprecationWarning)
    from pystac.extensions.label import LabelClasses, LabelCount, LabelExtension, LabelOverview, LabelType

PROPERTY_KEY = "class"  # label:overviews property_key: the label extension's schema wants a string, even for rasters
DECIMALS = 9  # footprint coordinates in degrees (~0.1 mm): hides PROJ's last-bit noise, keeps files stable
LABEL_FIELDS = ("properties", "classes", "description", "type", "tasks", "methods", "overviews")


def _footprint(row: dict[str, Any]) -> tuple[dict[str, Any], list[float]]:
    """The chip's bounds, reprojected from its CRS to WGS84, as a GeoJSON polygon and its bbox."""
    minx, miny, maxx, maxy = row["minx"], row["miny"], row["maxx"], row["maxy"]
    ring = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]  # counter-clockwise (RFC 7946)
    geometry = transform_geom(row["crs"], "EPSG:4326", {"type": "Polygon", "coordinates": [ring]})

    def rounded(value: Any) -> Any:  # noqa: ANN401 - nested coordinate lists/tuples
        if isinstance(value, list | tuple):
            return [rounded(v) for v in value]
        return round(float(value), DECIMALS)

    coordinates = rounded(geometry["coordinates"])
    rings = coordinates if geometry["type"] == "Polygon" else [r for polygon in coordinates for r in polygon]
    xs = [x for r in rings for x, _ in r]  # no source straddles the antimeridian: a plain min/max box is right
    ys = [y for r in rings for _, y in r]
    return {"type": geometry["type"], "coordinates": coordinates}, [min(xs), min(ys), max(xs), max(ys)]


def _year_span(first: int, last: int) -> tuple[datetime, datetime]:
    return datetime(first, 1, 1, tzinfo=UTC), datetime(last, 12, 31, 23, 59, 59, tzinfo=UTC)


def _item(row: dict[str, Any], info: ReleaseInfo, titles: dict[str, str]) -> pystac.Item:
    """One chip as a label item: footprint, the label year as its time span, image and label assets, counts."""
    geometry, bbox = _footprint(row)
    start, end = _year_span(row["year"], row["year"])
    item = pystac.Item(
        id=f"{row['source']}-{row['chip_id']}",
        geometry=geometry,
        bbox=bbox,
        datetime=None,
        start_datetime=start,
        end_datetime=end,
        properties={
            "source": row["source"],
            "chip_id": row["chip_id"],
            "region": row["region"],
            "continent": row["continent"],
            "crosswalk_set": row["crosswalk_set"],
            "gsd": info.resolution_m,
        },
    )
    for key, column, title, roles in (
        ("image", "image_path", f"Image chip ({len(info.bands)} bands)", ["data"]),
        ("labels", "label_path", "Label chip (class ids)", ["labels"]),
    ):
        extra = {"bands": [{"name": band} for band in info.bands]} if key == "image" else None
        href = f"../../{CHIPS}/{row[column]}"  # relative to stac/<source>/<chip_id>.json
        item.add_asset(
            key,
            pystac.Asset(href=href, title=title, media_type=pystac.MediaType.GEOTIFF, roles=roles, extra_fields=extra),
        )
    values = ", ".join(f"{i} = {n}" for i, n in zip(info.class_ids, info.class_names, strict=True))
    LabelExtension.ext(item, add_if_missing=True).apply(
        label_description=f"{titles[row['source']]} ({row['year']}) remapped to the target classes through the "
        f"{row['crosswalk_set']} crosswalk set; raster values: {values}",
        label_type=LabelType.RASTER,
        label_properties=None,
        label_classes=[LabelClasses.create(classes=list(info.class_names), name=None)],
        label_tasks=["segmentation"],
        label_overviews=[
            LabelOverview.create(
                property_key=PROPERTY_KEY,
                counts=[LabelCount.create(name, int(row[class_column(name)])) for name in info.class_names],
            )
        ],
    )
    return item


def _providers(info: ReleaseInfo) -> list[pystac.Provider]:
    """Each source's producer (with its own licence and citation), then this project as processor."""
    providers = [
        pystac.Provider(
            name=source.title,
            description=f"{source.region}, {source.continent}; licence: {source.licence}. {source.citation}",
            roles=[pystac.ProviderRole.PRODUCER, pystac.ProviderRole.LICENSOR],
            url=f"https://doi.org/{source.doi}" if source.doi else None,
        )
        for source in info.sources
    ]
    providers.append(
        pystac.Provider(
            name="cropharmony",
            description=f"Harmonized the labels ({info.crosswalk_set} crosswalk set) and cut the chips.",
            roles=[pystac.ProviderRole.PROCESSOR],
            url=info.url,
        )
    )
    return providers


def stac_collection(release: Path, info: ReleaseInfo) -> pystac.Collection:
    """The release's collection with its items, hrefs laid out under `release/stac/` (write_stac saves it)."""
    manifest = pl.read_parquet(release / MANIFEST).sort("source", "chip_id")
    if manifest.is_empty():
        raise ValueError(f"{release / MANIFEST}: no chips: a STAC collection needs at least one item for its extent")
    titles = {source.name: source.title for source in info.sources}
    items = [_item(row, info, titles) for row in manifest.iter_rows(named=True)]
    boxes = [item.bbox for item in items if item.bbox is not None]
    bbox = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    years: list[int] = sorted(manifest["year"].unique().to_list())
    start, end = _year_span(years[0], years[-1])
    licence = spdx_licence(info.licence)
    collection = pystac.Collection(
        id=f"cropharmony-{info.version}",
        title=info.title,
        description=full_description(info),
        extent=pystac.Extent(
            pystac.SpatialExtent([bbox]),
            pystac.TemporalExtent([[start, end]]),
        ),
        license=licence or "other",
        keywords=[*KEYWORDS, *sorted({source.continent for source in info.sources})],
        providers=_providers(info),
        summaries=pystac.Summaries(
            {column: sorted(set(manifest[column])) for column in ("source", "continent", "crosswalk_set")}
        ),
    )
    if licence is None:  # STAC: with `other`, a license link says where the terms are: the data card
        collection.add_link(
            pystac.Link("license", "../README.md", media_type="text/markdown", title=f"Licence: {info.licence}")
        )
    collection.add_items(items)
    collection.normalize_hrefs(
        str((release / STAC_DIR).absolute()),
        strategy=CustomLayoutStrategy(
            item_func=lambda item, parent: f"{parent}/{item.properties['source']}/{item.properties['chip_id']}.json"
        ),
    )
    return collection


def write_stac(release: Path, info: ReleaseInfo) -> Path:
    """Write `release/stac/` (layout: module docstring); returns the collection's path.

    The whole folder is saved beside the release first and renamed into place, so an interrupted write never leaves
    a half catalogue. Nothing time-dependent is written (no created/updated; item times are the label year), so
    equal releases give equal bytes.
    """
    collection = stac_collection(release, info)
    with stage_output(release / STAC_DIR) as tmp:
        collection.save(pystac.CatalogType.SELF_CONTAINED, dest_href=str(tmp))
    return release / STAC_COLLECTION
