#!/usr/bin/python
# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# The work is done by the action plugin plugins/action/fleet_report.py on the controller; this file holds its
# documentation for ansible-doc and the action-plugin-docs sanity test.

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Write one fleet report on the controller from every host's memtune.fleet.audit result
version_added: "0.1.0"
description:
  - An action that runs on the controller and connects to no host. It reads the result of M(memtune.fleet.audit)
    that each host of O(hosts) registered under O(result_var), and writes one report over the whole fleet into
    the directory O(dest), in each of O(formats) (C(memtune-audit.json), C(.xml), C(.md), C(.prom), C(.txt), C(.html)).
  - A host without such a result (unreachable, or its audit failed before comparing, for example on a policy
    error) is reported as an error with the reason; the other hosts are still reported.
  - The formats are those of C(memtune audit) (see C(docs/audit.md)) - JSON (schema C(schemas/report.schema.json)),
    JUnit XML (one testcase per host and knob), Markdown, the Prometheus text format for node_exporter's textfile
    collector, a table, and one self-contained HTML page (inline CSS and script, no network; a heat map of
    hosts by knob coloured by finding kind, grouped by the hosts' first inventory group, each host's knobs with
    their provenance and its memory picture). Each file is replaced in one step, and only when its content
    changed.
  - With O(baseline), values that moved since that baseline (C(memtune baseline record)) are reported too, apart
    from the policy drift. With O(record_baseline), the fleet's current values are written there as a new baseline.
  - Run it once per play (C(run_once=true)), after the audit task.
options:
  dest:
    description:
      - The directory on the controller to write the report files into; created when missing.
      - A relative path is below the working directory of C(ansible-playbook) on the controller.
    type: path
    required: true
  hosts:
    description: The hosts to report on. By default every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
  result_var:
    description: The name under which the hosts registered their M(memtune.fleet.audit) result.
    type: str
    default: memtune_audit
  formats:
    description: The report formats to write.
    type: list
    elements: str
    choices: [json, junit, markdown, prometheus, table, html]
    default: [json, junit, markdown, prometheus, table, html]
  baseline:
    description: A baseline file; values that moved since it are reported as C(moved) and count as drift.
    type: path
  record_baseline:
    description: Write the fleet's current values to this file as a new baseline.
    type: path
  fail_on_drift:
    description:
      - Fail the task when any host drifted, any value moved since O(baseline), or any host could not be audited.
      - The report is written either way.
    type: bool
    default: true
attributes:
  action:
    support: full
    description: Runs on the controller only.
  async:
    support: none
    description: Writes a few files on the controller.
  check_mode:
    support: full
    description: In check mode nothing is written and the result is never changed; O(dest) says where the files would go.
  diff_mode:
    support: none
    description: No diff of the report files.
  platform:
    support: full
    platforms: [posix]
    description: The controller.
seealso:
  - module: memtune.fleet.audit
author:
  - memtune contributors (@memtune)
"""

EXAMPLES = r"""
- name: Audit every host, report only
  memtune.fleet.audit:
    fail_on_drift: false
  register: memtune_audit
  ignore_errors: true
  ignore_unreachable: true

- name: Write the fleet report on the controller and fail when anything drifted
  memtune.fleet.fleet_report:
    dest: reports
    formats: [json, junit, prometheus]
  run_once: true

- name: Compare with last week's baseline and record today's
  memtune.fleet.fleet_report:
    dest: /var/lib/node_exporter/textfile
    formats: [prometheus]
    baseline: /srv/memtune/baseline.json
    record_baseline: /srv/memtune/baseline-new.json
    fail_on_drift: false
  run_once: true
"""

RETURN = r"""
changed:
  description: Whether a report file was written because its content changed (never in check mode).
  returned: always
  type: bool
  sample: true
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "12 hosts: 1 drifted, 0 not audited, 0 values moved; report in reports"
files:
  description: The files written, by format (and C(baseline) with O(record_baseline)).
  returned: always
  type: dict
  sample: {json: reports/memtune-audit.json, junit: reports/memtune-audit.xml}
summary:
  description: The report's summary.
  returned: always
  type: dict
  contains:
    hosts: {description: Hosts reported on., type: int}
    drifted_hosts: {description: Hosts with at least one finding., type: int}
    errors: {description: Hosts that could not be audited., type: int}
    checks: {description: Checks over all hosts., type: int}
    failed_checks: {description: Checks with at least one finding., type: int}
    findings: {description: Findings per kind., type: dict}
    moved: {description: Values moved since the baseline., type: int}
  sample: {hosts: 12, drifted_hosts: 1, errors: 0, checks: 96, failed_checks: 1, moved: 0,
           findings: {runtime_drift: 1, boot_drift: 0, shortfall: 0, unsupported: 0, unmanaged: 0}}
exit_code:
  description: What C(memtune audit) would exit with over the same results - 0 no drift, 1 drift or values moved,
    2 hosts that could not be audited.
  returned: always
  type: int
  sample: 1
errors:
  description: The hosts that could not be audited, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{host: db7, message: "Failed to connect to the host via ssh"}]
"""
