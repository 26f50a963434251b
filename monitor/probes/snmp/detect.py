"""`profile: auto`: which profile fits a device, from what it says it is.

As LibreNMS recognises an operating system, a device is recognised by its sysObjectID (a
prefix of the vendor's product arc), its sysDescr (a pattern) and, where a vendor's
sysObjectID tells nothing (a UPS card running a stock net-snmp), an OID of the vendor's own
arc that answers. Each profile's `detect` says which of these it needs; every part it gives
must hold.

Of several profiles that match, the most specific wins, in this order: the one deeper in an
`extends` chain (huawei-ups extends ups-mib: a Huawei UPS is a UPS-MIB agent, and more),
the longer sysObjectID prefix, more OIDs that must answer, a sysDescr pattern; then the
name, so that the choice never depends on the order files were read. A `catch_all` profile
(the generic IF-MIB router) is chosen only when nothing else matches; no match at all is
the system profile (uptime and name).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from monitor.config.profiles import SYS_DESCR, SYS_OBJECT_ID, SYSTEM_PROFILE, Profile


@dataclass(frozen=True, slots=True)
class Detected:
    """What a device said and the profile chosen for it (`why` in words, for people)."""

    profile: Profile
    object_id: str
    descr: str
    why: str
    others: tuple[Profile, ...] = ()  # the other profiles that matched, most specific first


def detection_oids(profiles: Mapping[str, Profile]) -> tuple[str, ...]:
    """The OIDs of the one GET that detection needs: sysObjectID, sysDescr, every `has`."""
    seen: dict[str, None] = {SYS_OBJECT_ID: None, SYS_DESCR: None}
    for profile in profiles.values():
        if profile.detect is not None:
            for oid in profile.detect.has:
                seen[oid] = None
    return tuple(seen)


def choose(
    profiles: Mapping[str, Profile], object_id: str, descr: str, answered: Collection[str]
) -> Detected:
    """The profile for a device whose sysObjectID is `object_id`, sysDescr `descr`, and
    that answered the OIDs `answered` (of `detection_oids`)."""
    found = ranked(profiles, object_id, descr, answered)
    if not found:
        return Detected(SYSTEM_PROFILE, object_id, descr, "no profile's detection matched")
    best = found[0]
    return Detected(best, object_id, descr, _why(best, object_id), tuple(found[1:]))


def ranked(
    profiles: Mapping[str, Profile], object_id: str, descr: str, answered: Collection[str]
) -> list[Profile]:
    """Every profile whose detection matches, the chosen one first; catch-alls last."""
    matching = [
        profile
        for profile in profiles.values()
        if profile.detect is not None and profile.detect.matches(object_id, descr, answered)
    ]

    def key(profile: Profile) -> tuple[object, ...]:
        catch_all = profile.detect is not None and profile.detect.catch_all
        return (catch_all, *_rank(profile, profiles, object_id))

    return sorted(matching, key=key)


def _rank(profile: Profile, profiles: Mapping[str, Profile], object_id: str) -> tuple[object, ...]:
    detect = profile.detect
    assert detect is not None
    return (
        -_depth(profile, profiles),
        -detect.prefix_length(object_id),
        -len(detect.has),
        0 if detect.sys_descr is not None else 1,
        profile.id,
    )


def _depth(profile: Profile, profiles: Mapping[str, Profile]) -> int:
    depth, seen = 0, {profile.id}
    while profile.extends is not None and profile.extends in profiles:
        profile = profiles[profile.extends]
        if profile.id in seen:  # the loader refuses cycles; never loop on one anyway
            break
        seen.add(profile.id)
        depth += 1
    return depth


def _why(profile: Profile, object_id: str) -> str:
    detect = profile.detect
    assert detect is not None
    parts = []
    if detect.sys_object_ids:
        prefix = max(
            (p for p in detect.sys_object_ids if object_id == p or object_id.startswith(p + ".")),
            key=len,
        )
        parts.append(f"sysObjectID {object_id} under {prefix}")
    if detect.sys_descr is not None:
        parts.append(f"sysDescr matches {detect.sys_descr.pattern!r}")
    if detect.has:
        parts.append(f"{', '.join(detect.has)} answered")
    kind = "catch-all: " if detect.catch_all else ""
    return kind + "; ".join(parts)
