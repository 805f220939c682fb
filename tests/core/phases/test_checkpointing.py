from __future__ import annotations

from pathlib import Path

import pytest

import modularml as mml
from modularml.errors import InvalidArgumentError, InvalidTypeError, ModularMLError
from modularml.phases import Checkpointing


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"checkpoint")
    return path


# ---------------------------------------------------------------------- construction and properties
def test_exported_at_top_level_and_in_phases() -> None:
    assert mml.Checkpointing is Checkpointing
    assert "Checkpointing" in mml.__all__
    assert "Checkpointing" in dir(mml)


def test_defaults() -> None:
    ckpt = Checkpointing()
    assert ckpt.mode == "memory"
    assert ckpt.save_on == ["epoch_end"]
    assert ckpt.every_n == 1
    assert ckpt.directory is None
    assert ckpt.name_template is None
    assert ckpt.max_to_keep is None
    assert ckpt.overwrite is True
    assert ckpt.saved_keys == []


def test_properties_reflect_arguments(tmp_path) -> None:
    ckpt = Checkpointing(
        mode="disk",
        save_on=["epoch_end", "phase_end"],
        every_n=3,
        directory=str(tmp_path),
        name_template="{phase}_{epoch}",
        max_to_keep=2,
        overwrite=False,
    )
    assert ckpt.mode == "disk"
    assert ckpt.save_on == ["epoch_end", "phase_end"]
    assert ckpt.every_n == 3
    assert ckpt.directory == tmp_path
    assert isinstance(ckpt.directory, Path)
    assert ckpt.name_template == "{phase}_{epoch}"
    assert ckpt.max_to_keep == 2
    assert ckpt.overwrite is False


def test_save_on_string_tuple_duplicates_and_copy() -> None:
    assert Checkpointing(save_on="batch_end").save_on == ["batch_end"]
    assert Checkpointing(save_on=("group_start", "group_end")).save_on == ["group_start", "group_end"]
    assert Checkpointing(save_on=["epoch_end", "phase_end", "epoch_end"]).save_on == ["epoch_end", "phase_end"]
    ckpt = Checkpointing()
    ckpt.save_on.append("batch_end")
    assert ckpt.save_on == ["epoch_end"]


@pytest.mark.parametrize("mode", ["Memory", "file", "", None, 1])
def test_bad_mode(mode) -> None:
    with pytest.raises(InvalidArgumentError, match=r"mode must be one of 'memory', 'disk'; got "):
        Checkpointing(mode=mode)


def test_bad_mode_message_names_value() -> None:
    with pytest.raises(ValueError, match="got 'file'"):
        Checkpointing(mode="file")


def test_save_on_empty_or_unknown() -> None:
    with pytest.raises(InvalidArgumentError, match="at least one hook; valid hooks: 'batch_end'"):
        Checkpointing(save_on=[])
    with pytest.raises(InvalidArgumentError, match=r"unknown hook\(s\) \['epoch_ends'\]; valid hooks: .*'phase_start'"):
        Checkpointing(save_on=["epoch_end", "epoch_ends"])
    with pytest.raises(InvalidArgumentError, match=r"unknown hook\(s\) \['on_epoch_end'\]"):
        Checkpointing(save_on="on_epoch_end")


def test_save_on_bad_types() -> None:
    with pytest.raises(InvalidTypeError, match="hook name or a list of hook names; got set"):
        Checkpointing(save_on={"epoch_end"})
    with pytest.raises(InvalidTypeError, match=r"hook names \(str\); got \[3\]"):
        Checkpointing(save_on=["epoch_end", 3])


@pytest.mark.parametrize("every_n", [0, -1, True, 1.0, "2", None])
def test_bad_every_n(every_n) -> None:
    with pytest.raises(InvalidArgumentError, match=f"every_n must be an int >= 1; got {every_n!r}"):
        Checkpointing(every_n=every_n)


@pytest.mark.parametrize("max_to_keep", [0, -2, False, 2.0, "3"])
def test_bad_max_to_keep(max_to_keep) -> None:
    with pytest.raises(InvalidArgumentError, match=f"max_to_keep must be None or an int >= 1; got {max_to_keep!r}"):
        Checkpointing(max_to_keep=max_to_keep)


def test_bad_name_template() -> None:
    with pytest.raises(InvalidTypeError, match="name_template must be None or a str; got int"):
        Checkpointing(name_template=3)
    with pytest.raises(InvalidArgumentError, match=r"name_template '\{epoch' is not a valid str.format template"):
        Checkpointing(name_template="{epoch")


def test_bad_directory() -> None:
    with pytest.raises(InvalidTypeError, match="directory must be None, a str or a path; got int"):
        Checkpointing(directory=3)
    with pytest.raises(InvalidArgumentError, match="directory must not be an empty string"):
        Checkpointing(directory="")


def test_bad_overwrite() -> None:
    with pytest.raises(InvalidTypeError, match="overwrite must be a bool; got 1"):
        Checkpointing(overwrite=1)


def test_errors_are_modularml_errors() -> None:
    with pytest.raises(ModularMLError):
        Checkpointing(every_n=0)
    with pytest.raises(TypeError):
        Checkpointing(overwrite="yes")


# ---------------------------------------------------------------------- parent-assigned defaults
def test_set_default_name_template_applies_only_without_user_template() -> None:
    ckpt = Checkpointing()
    ckpt.set_default_name_template("{phase}_epoch{epoch}")
    assert ckpt.name_template == "{phase}_epoch{epoch}"
    ckpt.set_default_name_template("{label}")
    assert ckpt.name_template == "{label}"
    ckpt.set_default_name_template(None)
    assert ckpt.name_template is None
    user = Checkpointing(name_template="mine_{epoch}")
    user.set_default_name_template("{phase}")
    assert user.name_template == "mine_{epoch}"
    assert user.get_config()["name_template"] == "mine_{epoch}"
    with pytest.raises(InvalidTypeError, match="default name template must be None or a str"):
        ckpt.set_default_name_template(1)
    with pytest.raises(InvalidArgumentError, match=r"not a valid str\.format template"):
        ckpt.set_default_name_template("{")


def test_set_directory_applies_only_without_user_directory(tmp_path) -> None:
    ckpt = Checkpointing(mode="disk")
    ckpt.set_directory(tmp_path / "exp" / "train")
    assert ckpt.directory == tmp_path / "exp" / "train"
    ckpt.set_directory(str(tmp_path / "other"))
    assert ckpt.directory == tmp_path / "other"
    assert ckpt.get_config()["directory"] is None
    ckpt.set_directory(None)
    assert ckpt.directory is None
    user = Checkpointing(mode="disk", directory=tmp_path / "mine")
    user.set_directory(tmp_path / "inherited")
    assert user.directory == tmp_path / "mine"
    with pytest.raises(InvalidTypeError, match="directory must be None, a str or a path"):
        ckpt.set_directory(5)


# ---------------------------------------------------------------------- should_save
def test_should_save_every_1_is_always_true_for_configured_hooks() -> None:
    ckpt = Checkpointing(save_on=["epoch_end", "batch_end"])
    assert all(ckpt.should_save("epoch_end") for _ in range(5))
    assert all(ckpt.should_save("batch_end") for _ in range(5))
    assert not ckpt.should_save("epoch_start")
    assert not ckpt.should_save("phase_end")


def test_should_save_every_3_counts_each_hook_separately() -> None:
    ckpt = Checkpointing(save_on=["epoch_end", "batch_end"], every_n=3)
    epochs = [ckpt.should_save("epoch_end") for _ in range(7)]
    assert epochs == [False, False, True, False, False, True, False]
    # batch_end has its own counter, unaffected by the epoch_end calls
    batches = [ckpt.should_save("batch_end") for _ in range(6)]
    assert batches == [False, False, True, False, False, True]
    # interleaved calls keep separate counts
    ckpt.reset()
    seq = []
    for _ in range(3):
        seq.append(("batch_end", ckpt.should_save("batch_end")))
        seq.append(("batch_end", ckpt.should_save("batch_end")))
        seq.append(("epoch_end", ckpt.should_save("epoch_end")))
    assert [flag for hook, flag in seq if hook == "epoch_end"] == [False, False, True]
    assert [flag for hook, flag in seq if hook == "batch_end"] == [False, False, True, False, False, True]


def test_should_save_unconfigured_hook_does_not_count() -> None:
    ckpt = Checkpointing(save_on="epoch_end", every_n=2)
    for _ in range(5):
        assert not ckpt.should_save("phase_end")
    assert [ckpt.should_save("epoch_end") for _ in range(4)] == [False, True, False, True]


def test_should_save_unknown_hook() -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown lifecycle hook 'epoch'; valid hooks: 'batch_end'"):
        Checkpointing().should_save("epoch")


# ---------------------------------------------------------------------- format_name and placeholders
def test_format_name() -> None:
    ckpt = Checkpointing(name_template="{phase}_epoch{epoch:03d}")
    assert ckpt.format_name(phase="train", epoch=7) == "train_epoch007"
    assert ckpt.format_name(phase="train", epoch=7, batch=2) == "train_epoch007"


def test_format_name_missing_placeholder() -> None:
    ckpt = Checkpointing(name_template="{phase}_epoch{epoch}")
    with pytest.raises(
        InvalidArgumentError, match=r"'\{phase\}_epoch\{epoch\}' needs a value for placeholder \{epoch\}"
    ):
        ckpt.format_name(phase="train")
    with pytest.raises(ValueError, match="values were given for: none"):
        ckpt.format_name()
    with pytest.raises(InvalidArgumentError, match="positional placeholder"):
        Checkpointing(name_template="ckpt_{}").format_name(epoch=1)


def test_format_name_without_template() -> None:
    with pytest.raises(InvalidArgumentError, match="has no name_template"):
        Checkpointing().format_name(epoch=1)
    ckpt = Checkpointing()
    ckpt.set_default_name_template("{label}")
    assert ckpt.format_name(label="run1") == "run1"


def test_validate_placeholders_accepts_allowed() -> None:
    allowed = frozenset({"phase", "epoch", "batch"})
    Checkpointing.validate_placeholders("{phase}_{epoch:04d}_{batch!s}", allowed, "TrainPhase")
    Checkpointing.validate_placeholders("no_placeholders", allowed, "TrainPhase")
    Checkpointing.validate_placeholders("{{literal}}_{epoch}", allowed, "TrainPhase")


def test_validate_placeholders_refuses_others() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        Checkpointing.validate_placeholders("{label}_{epoch}", frozenset({"phase", "epoch"}), "TrainPhase 'fit'")
    message = str(info.value)
    assert "'{label}'" in message
    assert "TrainPhase 'fit'" in message
    assert "allowed placeholders: '{epoch}', '{phase}'" in message
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidArgumentError, match=r"placeholder\(s\) '\{\}' not available for Experiment"):
        Checkpointing.validate_placeholders("ckpt_{}", frozenset({"label"}), "Experiment")
    with pytest.raises(InvalidArgumentError, match="allowed placeholders: none"):
        Checkpointing.validate_placeholders("{x}", frozenset(), "ctx")
    with pytest.raises(InvalidArgumentError, match=r"not a valid str\.format template"):
        Checkpointing.validate_placeholders("{x", frozenset({"x"}), "ctx")
    with pytest.raises(InvalidTypeError, match="name template is a str"):
        Checkpointing.validate_placeholders(None, frozenset(), "ctx")


def test_validate_for_hooks_and_template() -> None:
    train = Checkpointing(save_on=["epoch_end", "batch_end"], name_template="{phase}_{epoch}")
    train.validate_for("TrainPhase 'fit'", Checkpointing.TRAIN_PHASE_HOOKS, Checkpointing.TRAIN_PHASE_PLACEHOLDERS)
    with pytest.raises(
        InvalidArgumentError,
        match=r"save_on hook\(s\) \['epoch_end', 'batch_end'\] are not available for Experiment 'exp'; allowed hooks: "
        r"'group_end', 'group_start', 'phase_end', 'phase_start'",
    ):
        train.validate_for("Experiment 'exp'", Checkpointing.EXPERIMENT_HOOKS, Checkpointing.EXPERIMENT_PLACEHOLDERS)
    exp = Checkpointing(save_on="group_end", name_template="{phase}")
    with pytest.raises(InvalidArgumentError, match=r"'\{phase\}' not available for Experiment 'exp'"):
        exp.validate_for("Experiment 'exp'", Checkpointing.EXPERIMENT_HOOKS, Checkpointing.EXPERIMENT_PLACEHOLDERS)
    # the parent-assigned default template is validated too; no template passes
    plain = Checkpointing(save_on="phase_end")
    plain.validate_for("Experiment 'exp'", Checkpointing.EXPERIMENT_HOOKS, Checkpointing.EXPERIMENT_PLACEHOLDERS)
    plain.set_default_name_template("{epoch}")
    with pytest.raises(InvalidArgumentError, match=r"'\{epoch\}' not available"):
        plain.validate_for("Experiment 'exp'", Checkpointing.EXPERIMENT_HOOKS, Checkpointing.EXPERIMENT_PLACEHOLDERS)


def test_context_constants() -> None:
    assert Checkpointing.TRAIN_PHASE_HOOKS | Checkpointing.EXPERIMENT_HOOKS == Checkpointing.VALID_HOOKS
    assert {"phase", "epoch", "batch"} == Checkpointing.TRAIN_PHASE_PLACEHOLDERS
    assert {"label"} == Checkpointing.EXPERIMENT_PLACEHOLDERS


# ---------------------------------------------------------------------- memory mode
def test_record_memory_and_lookups() -> None:
    ckpt = Checkpointing()
    state = {"w": [1, 2]}
    ckpt.record_memory(0, state)
    ckpt.record_memory("best", {"w": [3]})
    assert ckpt.get_state(0) is state
    assert ckpt.get_state("best") == {"w": [3]}
    assert ckpt.get_state(1) is None
    assert ckpt.has_key(0)
    assert ckpt.has_key("best")
    assert not ckpt.has_key(1)
    assert ckpt.get_path(0) is None
    assert ckpt.saved_keys == [0, "best"]


def test_record_memory_replaces_key() -> None:
    ckpt = Checkpointing()
    ckpt.record_memory(1, {"v": 1})
    ckpt.record_memory(1, {"v": 2})
    assert ckpt.get_state(1) == {"v": 2}
    assert ckpt.saved_keys == [1]


def test_max_to_keep_memory_drops_oldest_recorded() -> None:
    ckpt = Checkpointing(max_to_keep=2)
    ckpt.record_memory(5, {"v": 5})
    ckpt.record_memory(1, {"v": 1})
    ckpt.record_memory(3, {"v": 3})  # drops 5: oldest recorded, not smallest key
    assert ckpt.saved_keys == [1, 3]
    assert ckpt.get_state(5) is None
    assert not ckpt.has_key(5)
    ckpt.record_memory(1, {"v": 11})  # re-recording 1 makes it newest
    ckpt.record_memory(7, {"v": 7})  # so 3 is now the oldest
    assert ckpt.saved_keys == [1, 7]
    assert ckpt.get_state(1) == {"v": 11}


def test_record_memory_errors(tmp_path) -> None:
    ckpt = Checkpointing()
    with pytest.raises(InvalidTypeError, match=r"key is an int or a str; got 1.5"):
        ckpt.record_memory(1.5, {})
    with pytest.raises(InvalidTypeError, match="got True"):
        ckpt.record_memory(True, {})
    with pytest.raises(InvalidTypeError, match="stores a state dict; got list"):
        ckpt.record_memory(0, [])
    with pytest.raises(InvalidArgumentError, match=r"record_memory\(\) needs mode='memory'; .* mode='disk'"):
        Checkpointing(mode="disk").record_memory(0, {})
    with pytest.raises(InvalidArgumentError, match=r"record_disk\(\) needs mode='disk'; .* mode='memory'"):
        ckpt.record_disk(0, _write(tmp_path / "a.ckpt.mml"))


def test_saved_keys_mixed_ints_and_strs() -> None:
    ckpt = Checkpointing()
    for key in ["last", 10, "best", 2, 0, "a"]:
        ckpt.record_memory(key, {})
    assert ckpt.saved_keys == [0, 2, 10, "a", "best", "last"]


# ---------------------------------------------------------------------- disk mode
def test_record_disk_and_lookups(tmp_path) -> None:
    ckpt = Checkpointing(mode="disk", directory=tmp_path)
    p0 = _write(tmp_path / "e0.ckpt.mml")
    ckpt.record_disk(0, p0)
    ckpt.record_disk("final", str(_write(tmp_path / "final.ckpt.mml")))
    assert ckpt.get_path(0) == p0
    assert ckpt.get_path("final") == tmp_path / "final.ckpt.mml"
    assert isinstance(ckpt.get_path("final"), Path)
    assert ckpt.get_path(1) is None
    assert ckpt.get_state(0) is None
    assert ckpt.has_key(0)
    assert not ckpt.has_key(1)
    assert ckpt.saved_keys == [0, "final"]
    p0.unlink()  # a file gone from disk is no longer available
    assert ckpt.get_path(0) is None
    assert not ckpt.has_key(0)
    assert ckpt.saved_keys == ["final"]
    with pytest.raises(InvalidTypeError, match="needs a file path; got int"):
        ckpt.record_disk(1, 42)
    with pytest.raises(InvalidTypeError, match="key is an int or a str"):
        ckpt.record_disk(None, p0)


def test_max_to_keep_disk_deletes_oldest_files(tmp_path) -> None:
    ckpt = Checkpointing(mode="disk", directory=tmp_path, max_to_keep=2)
    paths = {}
    for epoch in [4, 1, 2, 3]:
        paths[epoch] = _write(tmp_path / f"epoch{epoch}.ckpt.mml")
        ckpt.record_disk(epoch, paths[epoch])
    assert ckpt.saved_keys == [2, 3]
    assert not paths[4].exists()
    assert not paths[1].exists()
    assert paths[2].exists()
    assert paths[3].exists()
    assert ckpt.get_path(4) is None
    assert ckpt.get_path(1) is None
    assert not ckpt.has_key(4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch2.ckpt.mml", "epoch3.ckpt.mml"]


def test_max_to_keep_disk_tolerates_missing_file(tmp_path) -> None:
    ckpt = Checkpointing(mode="disk", max_to_keep=1)
    ckpt.record_disk(0, tmp_path / "never_written.ckpt.mml")
    p1 = _write(tmp_path / "e1.ckpt.mml")
    ckpt.record_disk(1, p1)
    assert ckpt.saved_keys == [1]
    assert p1.exists()


def test_max_to_keep_disk_keeps_a_file_still_recorded_for_a_kept_key(tmp_path) -> None:
    ckpt = Checkpointing(mode="disk", max_to_keep=1)
    shared = _write(tmp_path / "latest.ckpt.mml")
    ckpt.record_disk(0, shared)
    ckpt.record_disk(1, shared)  # same file overwritten for the next epoch
    assert shared.exists()
    assert ckpt.saved_keys == [1]
    assert ckpt.get_path(0) is None


def test_record_disk_replacing_key_moves_it_to_newest(tmp_path) -> None:
    ckpt = Checkpointing(mode="disk", max_to_keep=2)
    a, b, a2, c = (_write(tmp_path / f"{n}.ckpt.mml") for n in ["a", "b", "a2", "c"])
    ckpt.record_disk("a", a)
    ckpt.record_disk("b", b)
    ckpt.record_disk("a", a2)
    assert ckpt.get_path("a") == a2
    assert a.exists()  # the replaced file is not deleted
    ckpt.record_disk("c", c)  # "b" is now the oldest
    assert ckpt.saved_keys == ["a", "c"]
    assert not b.exists()
    assert a2.exists()


# ---------------------------------------------------------------------- reset, config, repr
def test_reset_clears_states_paths_and_counters(tmp_path) -> None:
    mem = Checkpointing(every_n=2)
    mem.record_memory(0, {})
    assert not mem.should_save("epoch_end")
    mem.reset()
    assert mem.saved_keys == []
    assert mem.get_state(0) is None
    assert [mem.should_save("epoch_end") for _ in range(2)] == [False, True]

    disk = Checkpointing(mode="disk", name_template="{epoch}")
    disk.set_directory(tmp_path)
    p = _write(tmp_path / "0.ckpt.mml")
    disk.record_disk(0, p)
    disk.reset()
    assert disk.saved_keys == []
    assert disk.get_path(0) is None
    assert p.exists()  # files are left alone
    assert disk.directory == tmp_path  # configuration and defaults are kept
    assert disk.name_template == "{epoch}"


def test_config_round_trip(tmp_path) -> None:
    ckpt = Checkpointing(
        mode="disk",
        save_on=["epoch_end", "phase_end"],
        every_n=2,
        directory=tmp_path,
        name_template="{phase}_{epoch}",
        max_to_keep=3,
        overwrite=False,
    )
    config = ckpt.get_config()
    assert config == {
        "mode": "disk",
        "save_on": ["epoch_end", "phase_end"],
        "every_n": 2,
        "directory": str(tmp_path),
        "name_template": "{phase}_{epoch}",
        "max_to_keep": 3,
        "overwrite": False,
    }
    rebuilt = Checkpointing.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.directory == tmp_path
    default = Checkpointing()
    assert Checkpointing.from_config(default.get_config()).get_config() == default.get_config()
    assert default.get_config()["directory"] is None
    assert Checkpointing.from_config({}).get_config() == default.get_config()


def test_config_excludes_defaults_and_tracked_checkpoints(tmp_path) -> None:
    ckpt = Checkpointing()
    ckpt.set_default_name_template("{phase}")
    ckpt.set_directory(tmp_path)
    ckpt.record_memory(0, {})
    assert ckpt.get_config() == Checkpointing().get_config()


def test_from_config_errors() -> None:
    with pytest.raises(InvalidTypeError, match="needs a dict; got list"):
        Checkpointing.from_config([])
    with pytest.raises(InvalidArgumentError, match=r"unknown key\(s\) \['bogus'\]; known keys: \['mode'"):
        Checkpointing.from_config({"mode": "memory", "bogus": 1})
    with pytest.raises(InvalidArgumentError, match="every_n must be an int >= 1"):
        Checkpointing.from_config({"every_n": 0})


def test_repr_shows_configuration(tmp_path) -> None:
    assert repr(Checkpointing()) == (
        "Checkpointing(mode='memory', save_on=['epoch_end'], every_n=1, directory=None, "
        "name_template=None, max_to_keep=None, overwrite=True)"
    )
    ckpt = Checkpointing(mode="disk", save_on="phase_end", every_n=2, max_to_keep=1, overwrite=False)
    ckpt.set_directory(tmp_path)
    ckpt.set_default_name_template("{label}")
    assert repr(ckpt) == (
        f"Checkpointing(mode='disk', save_on=['phase_end'], every_n=2, directory={str(tmp_path)!r}, "
        "name_template='{label}', max_to_keep=1, overwrite=False)"
    )


def test_forget_drops_a_key_and_leaves_its_file(tmp_path: Path) -> None:
    ckpt = Checkpointing(mode="disk", directory=tmp_path)
    path = tmp_path / "a.ckpt.mml"
    path.write_bytes(b"x")
    ckpt.record_disk(0, path)
    ckpt.record_disk(1, path)
    ckpt.forget(0)
    assert ckpt.saved_keys == [1]
    assert path.exists()
    memory = Checkpointing()
    memory.record_memory("k", {"a": 1})
    memory.forget("k")
    memory.forget("never recorded")  # nothing to do
    assert memory.saved_keys == []
