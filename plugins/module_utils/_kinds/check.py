# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every kind's validation of its DesiredState section shares (_apply/desired.py runs them)."""

from __future__ import annotations


class DesiredError(ValueError):
    """The desired state is malformed; the message names the field."""


def require(condition, message):
    if not condition:
        raise DesiredError(message)


def integer(value, where, minimum=0):
    require(
        isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
        "%s: expected an integer >= %d, got %r" % (where, minimum, value),
    )
    return value


def mappings(section, name):
    """-> (where, entry) for each entry of a list of mappings, ``where`` like ``cgroups[2]``."""
    require(isinstance(section, list), "%s: expected a list" % name)
    for index, entry in enumerate(section):
        where = "%s[%d]" % (name, index)
        require(isinstance(entry, dict), "%s: expected a mapping" % where)
        yield where, entry
