"""The "drives" inventory section (physical drives with SMART health) at the agent API:
accepted whole when well formed, refused with the reason when not, nothing else lost."""

from __future__ import annotations

import copy
import json

import pytest

from tests.test_agents_ingest import metrics_batch, signed  # noqa: F401 (fixture)
from watchkeeper.agents.checkin.validation import Invalid, validate_checkin
from watchkeeper.agents.models import MetricSample, QuarantinedPayload
from watchkeeper.inventory.models import DeviceSection

pytestmark = pytest.mark.django_db

HEALTHY = {"device": "/dev/sda", "type": "sat", "protocol": "ATA",
           "model": "Samsung SSD 860 EVO 500GB", "serial": "S3Z2NB0K712345A",
           "capacity_bytes": 500107862016, "media": "ssd", "exit_status": 0,
           "smart_status": "passed", "temperature_c": 31, "power_on_hours": 12034,
           "attributes": [{"id": 5, "name": "Reallocated_Sector_Ct", "value": 100,
                           "worst": 100, "thresh": 10, "when_failed": "",
                           "prefailure": True, "raw": 0}]}
NVME = {"device": "/dev/nvme0", "protocol": "NVMe", "model": "Samsung SSD 970 EVO Plus 1TB",
        "serial": "S4EWNF0M812345K", "smart_status": "failed", "critical_warning": 1,
        "available_spare": 4, "available_spare_threshold": 10, "percentage_used": 103,
        "media_errors": 12, "temperature_c": 44, "power_on_hours": 20411}
UNREADABLE = {"device": "/dev/sdc", "type": "sat", "protocol": "ATA", "model": "unknown",
              "serial": "unknown", "smart_status": "unknown", "exit_status": 2,
              "error": "Smartctl open device: /dev/sdc [SAT] failed: No such device"}


def batch(seq: int, drives) -> dict:
    return {"seq": seq, "inventory": {"hashes": {}, "sections": {"drives": drives}}}


def reasons(drives) -> list[str]:
    with pytest.raises(Invalid) as caught:
        validate_checkin(batch(1, drives))
    return caught.value.errors


def with_attr(**change) -> dict:
    drive = copy.deepcopy(HEALTHY)
    drive["attributes"][0].update(change)
    return drive


@pytest.mark.parametrize(("drives", "reason"), [
    ({"device": "/dev/sda"}, "inventory.sections.drives: must be a list"),
    ([{"model": "x", "smart_status": "passed"}], "inventory.sections.drives[0].device: required"),
    ([{**HEALTHY, "smart_status": "OK"}],
     "inventory.sections.drives[0].smart_status: expected one of 'passed', 'failed', "
     "'unknown'"),
    ([{**HEALTHY, "attributes": {"5": 100}}],
     "inventory.sections.drives[0].attributes: expected a list of at most 255 attribute "
     "objects"),
    ([{**HEALTHY, "attributes": ["Reallocated_Sector_Ct"]}],
     "inventory.sections.drives[0].attributes[0]: must be an object"),
    ([with_attr(thresh=300)],
     "inventory.sections.drives[0].attributes[0].thresh: expected an integer from 0 to 255"),
    ([with_attr(id=0)],
     "inventory.sections.drives[0].attributes[0].id: expected an integer from 1 to 255"),
    ([with_attr(raw=-1)],
     "inventory.sections.drives[0].attributes[0].raw: expected an integer from 0 to "
     f"{2**63 - 1}"),
    ([with_attr(when_failed="soon")],
     "inventory.sections.drives[0].attributes[0].when_failed: expected one of '', 'now', "
     "'past'"),
    ([with_attr(prefailure="yes")],
     "inventory.sections.drives[0].attributes[0].prefailure: expected bool"),
    ([{**NVME, "critical_warning": 256}],
     "inventory.sections.drives[0].critical_warning: expected an integer from 0 to 255"),
    ([{**NVME, "percentage_used": True}],
     "inventory.sections.drives[0].percentage_used: expected an integer from 0 to 255"),
    ([HEALTHY, {**HEALTHY, "temperature_c": 12.5}],
     "inventory.sections.drives[1].temperature_c: expected an integer from -100 to 300"),
])
def test_malformed_drives_are_refused_with_the_reason(drives, reason):
    assert reason in reasons(drives)


def test_well_formed_drives_pass():
    assert validate_checkin(batch(1, [HEALTHY, NVME, UNREADABLE]))
    # "unknown" is always allowed for a fact that could not be read
    assert validate_checkin(batch(1, [{**HEALTHY, "temperature_c": "unknown",
                                       "power_on_hours": "unknown"}]))


def test_a_malformed_smart_payload_is_refused_quarantined_and_loses_nothing_else(signed):  # noqa: F811
    # Given an agent whose metrics batch went through
    assert signed.post(metrics_batch(1)).status_code == 200
    # When its next batch carries a drive with a SMART attribute out of range
    bad = batch(2, [HEALTHY, with_attr(value=999)])
    response = signed.post(bad)
    # Then it is a 400 with the reason, the batch is quarantined, nothing of it stored
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invalid"
    assert ("inventory.sections.drives[1].attributes[0].value: expected an integer from 0 "
            "to 255") in response.json()["errors"]
    quarantined = QuarantinedPayload.objects.get()
    assert '"value": 999' in quarantined.body and "attributes[0].value" in quarantined.reason
    assert not DeviceSection.objects.filter(section="drives").exists()
    # And what was stored before stays, and the next well-formed batch is stored whole
    assert MetricSample.objects.count() == 1
    good = signed.post(batch(3, [HEALTHY, NVME, UNREADABLE]))
    assert good.status_code == 200, good.content
    stored = DeviceSection.objects.get(device_id=signed.agent.device_id, section="drives")
    assert [d["device"] for d in stored.data] == ["/dev/sda", "/dev/nvme0", "/dev/sdc"]
    assert stored.data[1]["critical_warning"] == 1
    assert json.loads(json.dumps(stored.data[0])) == HEALTHY
    assert good.json()["inventory_hashes"]["drives"]
