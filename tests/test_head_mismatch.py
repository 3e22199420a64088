"""HeadMismatch: the user's checkpoint's classifier for another class count, as a typed error the GUI asks about
(never recognised by its text), across threads (ErrorInfo), processes (pickle) and files (JSON)."""
import json
import pickle

import pytest
import torch

from workbench.core.errors import BadInput, ErrorInfo, ErrorKind, HeadMismatch
from workbench.core.specs import load_model

ARCH = "arch:mlp:hidden=8"


def test_load_model_raises_it_with_the_layer_and_both_counts(tmp_path):
    torch.save(load_model(ARCH, (1, 8, 8), 10).module.state_dict(), tmp_path / "ten.pth")
    with pytest.raises(HeadMismatch) as caught:
        load_model(str(tmp_path / "ten.pth"), (1, 8, 8), 3, arch=ARCH)
    err = caught.value
    assert (err.layer, err.have, err.want) == ("fc2", 10, 3) and isinstance(err, BadInput)
    info = ErrorInfo.of(err)
    assert info.kind is ErrorKind.BAD_INPUT and info.exit_code == 2 and info.head == ("fc2", 10, 3)
    for crossed in (pickle.loads(pickle.dumps(info)), ErrorInfo.from_json(json.loads(json.dumps(info.to_json())))):
        assert crossed == info
        again = crossed.exception()
        assert isinstance(again, HeadMismatch) and (again.layer, again.have, again.want) == ("fc2", 10, 3)


@pytest.mark.parametrize("head", [["fc", 10], ["fc", "10", 2], [1, 10, 2], ["fc", True, 2], ["fc", 10, -2],
                                  ["fc", 10, 2**40], "fc:10:2", None])
def test_a_malformed_head_in_a_record_is_no_head(head):
    info = ErrorInfo.from_json({"kind": "bad_input", "message": "m", "head": head})
    assert info.head is None and type(info.exception()) is BadInput


def test_only_bad_input_carries_a_head():
    info = ErrorInfo.from_json({"kind": "crashed", "message": "m", "head": ["fc", 10, 2]})
    assert info.head is None and info.to_json() == {"kind": "crashed", "message": "m", "details": "", "reason": ""}
