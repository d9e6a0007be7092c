"""AMIs as Rodeo sees them: lineage tags, look-ups and source resolution.

Every AMI Rodeo bakes carries ``rodeo:*`` tags (see ``TAG_KEYS``) on itself
and its snapshots; they let ``release`` find the newest verified image and a
later bake find a parent or a cached result.
"""

from __future__ import annotations

from typing import Any

from toolkit.config import AMI_RE, AmiFilter, Image
from toolkit.errors import ImageError

TAG_KEYS = (
    "rodeo:app",
    "rodeo:image",
    "rodeo:git-sha",
    "rodeo:source-ami",
    "rodeo:inputs-hash",
    "rodeo:verified",
    "rodeo:toolkit-version",
    "rodeo:built-at",
    "rodeo:app-source",  # these three only on images with an app source
    "rodeo:app-commit",
    "rodeo:app-version",
    "rodeo:release-command",  # only on images Rodeo's app role baked from a Procfile: its release: line ("" for none)
)
# The Procfile's release: line, for the release phase when rodeo.yml sets no release_command (toolkit.release.phase).
RELEASE_COMMAND_TAG = "rodeo:release-command"


def tags_of(image: dict) -> dict[str, str]:
    """An EC2 image's tags as a plain dict."""
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def check_id(ami: str) -> str:
    """``ami`` if it has an AMI id's form; ImageError otherwise (before any AWS call)."""
    if not AMI_RE.match(ami or ""):
        raise ImageError(f"{ami!r} is not an AMI id", "write it like ami-0abc1234def567890")
    return ami


def find_ami(aws: Any, ami: str, region: str | None = None) -> dict | None:
    """The AMI ``ami`` with ``"tags"`` as a dict, or None when it does not exist."""
    check_id(ami)
    ec2 = aws.client("ec2", region)
    try:
        images = ec2.describe_images(ImageIds=[ami])["Images"]
    except Exception as exc:  # InvalidAMIID.NotFound / .Malformed
        if "InvalidAMIID" in str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")):
            return None
        raise
    if not images:
        return None
    return dict(images[0], tags=tags_of(images[0]))


def require_ami(aws: Any, ami: str, allow_unverified: bool = False) -> dict:
    """The AMI ``ami``; ImageError when it is missing or (unless allowed) unverified."""
    found = find_ami(aws, ami)
    if found is None:
        raise ImageError(f"{ami} does not exist in {aws.region}", "check the id, or bake one with 'invoke bake'")
    if not allow_unverified and found["tags"].get("rodeo:verified") != "true":
        raise ImageError(
            f"{ami} is not a verified Rodeo image (no rodeo:verified=true tag)",
            "bake it with 'invoke bake', or pass --allow-unverified",
        )
    return found


def require_owner(found: dict, app: str, image: str | None = None) -> dict:
    """``found`` (an AMI from ``find_ami``); ImageError when its tags name another app, or another image.

    An AMI without ``rodeo:app`` (not baked by Rodeo, released with
    --allow-unverified) passes; so does one without ``rodeo:image`` when
    ``image`` is given.
    """
    tags = found.get("tags", {})
    ami = found.get("ImageId", "?")
    owner = tags.get("rodeo:app")
    if owner and owner != app:
        raise ImageError(
            f"{ami} was baked for app {owner!r}, not {app!r} (tag rodeo:app)",
            f"release an AMI of {app!r}: 'invoke bake' in this project, or check --ami and --env",
        )
    kind = tags.get("rodeo:image")
    if image and kind and kind != image:
        raise ImageError(
            f"{ami} is an AMI of image {kind!r}, not {image!r} (tag rodeo:image)",
            f"release an AMI of {image!r}, or set release.image: {kind} in rodeo.yml if that image is the one to release",
        )
    return found


def newest_verified(aws: Any, app: str, image: str, region: str | None = None) -> dict | None:
    """The newest AMI of ``image`` tagged verified for ``app``, or None."""
    return _newest_verified(aws, region, app, image)


def find_by_inputs(aws: Any, app: str, image: str, inputs_hash: str, region: str | None = None) -> dict | None:
    """The newest verified AMI of ``image`` baked from exactly these inputs, or None."""
    return _newest_verified(aws, region, app, image, {"Name": "tag:rodeo:inputs-hash", "Values": [inputs_hash]})


def _newest_verified(aws: Any, region: str | None, app: str, image: str, *more: dict) -> dict | None:
    filters = [
        {"Name": "tag:rodeo:app", "Values": [app]},
        {"Name": "tag:rodeo:image", "Values": [image]},
        {"Name": "tag:rodeo:verified", "Values": ["true"]},
        *more,
    ]
    found = [
        i
        for i in aws.client("ec2", region).describe_images(Owners=["self"], Filters=filters)["Images"]
        if i.get("State", "available") == "available"
    ]
    if not found:
        return None
    newest = max(found, key=lambda i: (tags_of(i).get("rodeo:built-at", ""), i.get("CreationDate", "")))
    return dict(newest, tags=tags_of(newest))


def lineage(tags: dict[str, str]) -> dict[str, str]:
    """Only Rodeo's ``rodeo:*`` tags."""
    return {k: v for k, v in tags.items() if k.startswith("rodeo:")}


def app_source(tags: dict[str, str]) -> dict[str, str]:
    """The app source an AMI was baked from, ``{"source", "commit", "version"}``, from its tags; {} without one."""
    found = {k: tags.get(f"rodeo:app-{k}", "") for k in ("source", "commit", "version")}
    return found if found["commit"] else {}


def resolve_source(aws: Any, image: Image) -> str:
    """The AMI id a base image starts from (an id, or the newest match of its filter)."""
    source = image.source_ami
    if isinstance(source, str):
        if find_ami(aws, source) is None:
            raise ImageError(
                f"images.{image.name}.source_ami: {source} does not exist in {aws.region}",
                "check the id and the region in rodeo.yml",
            )
        return source
    assert isinstance(source, AmiFilter)
    found = aws.client("ec2").describe_images(
        Owners=list(source.owners), Filters=[{"Name": "name", "Values": [source.name]}]
    )["Images"]
    if not found:
        raise ImageError(
            f"images.{image.name}.source_ami: no AMI named {source.name!r} owned by {', '.join(source.owners)} in {aws.region}",
            "fix the name filter or owners in rodeo.yml (on the local stack, run 'invoke local.up' to seed the base AMI)",
        )
    return max(found, key=lambda i: i.get("CreationDate", ""))["ImageId"]
