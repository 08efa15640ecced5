"""Checkpoint formats, key layouts, safety of pickles, errors, identities and presets."""

from __future__ import annotations

import json
import os
import shutil
import sys
import types

import pytest
import torch
from safetensors.torch import load_file, save_file

import embedhead.backbone
from embedhead.backbone import PRESETS, BackboneIdentity, HyenaDNAModel, load_backbone
from embedhead.backbone.config import HyenaDNAConfig
from embedhead.backbone.presets import (
    count_backbone_parameters,
    init_backbone,
    preset_config,
    write_random_checkpoint,
)
from embedhead.errors import ConfigError, IncompatibleError, InputError

SHAPE = {"d_model": 16, "n_layer": 2, "d_inner": 32, "max_seq_len": 64}
IDS = torch.tensor([[7, 8, 9, 10, 11, 6, 7, 7, 9, 10] * 3])


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return write_random_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "src", seed=3, init="stress", **SHAPE
    )


@pytest.fixture(scope="module")
def hf_tensors(source):
    return load_file(str(source / "model.safetensors"))


def _folder(tmp_path, source, name):
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(source / "config.json", folder / "config.json")
    return folder


def _lightning(hf_tensors, infix):
    state = {}
    for key, value in hf_tensors.items():
        key = "model." + key.removeprefix("hyena.")
        if infix:
            for part in (".mixer.", ".mlp."):
                if part in key and ".layers." in key:
                    key = key.replace(part, part + "layer.", 1)
        state[key] = value
        if key.endswith("implicit_filter.1.freq"):
            state[key.replace(".1.freq", ".3.freq")] = value.clone()
            state[key.replace(".1.freq", ".5.freq")] = value.clone()
    return state


def _all_formats(tmp_path, source, hf_tensors):
    """Folders/files holding the same weights in every accepted format and layout."""
    sources = {"hf-safetensors": source}
    folder = _folder(tmp_path, source, "bin")
    state = dict(hf_tensors)
    for key, value in hf_tensors.items():
        if key.endswith("implicit_filter.1.freq"):
            state[key.replace(".1.freq", ".3.freq")] = value
            state[key.replace(".1.freq", ".5.freq")] = value
    torch.save(state, folder / "pytorch_model.bin")
    sources["hf-bin"] = folder
    folder = _folder(tmp_path, source, "base")
    save_file(
        {k.removeprefix("hyena."): v for k, v in hf_tensors.items() if "lm_head" not in k},
        str(folder / "model.safetensors"),
    )
    sources["base-safetensors"] = folder
    for infix in (False, True):
        name = "ckpt-mixer" if infix else "ckpt-plain"
        folder = _folder(tmp_path, source, name)
        ckpt = {
            "state_dict": _lightning(hf_tensors, infix),
            "epoch": 3,
            "global_step": 1000,
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 6e-4}]}],
            "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(1.5)}},
        }
        torch.save(ckpt, folder / "weights.ckpt")
        sources[name] = folder
    sources["ckpt-file"] = folder / "weights.ckpt"
    return sources


def test_every_format_gives_identical_outputs_and_hash(tmp_path, source, hf_tensors):
    sources = _all_formats(tmp_path, source, hf_tensors)
    reference = load_backbone(source)
    with torch.no_grad():
        expected = reference(IDS)
    for name, path in sources.items():
        model = load_backbone(path)
        with torch.no_grad():
            assert torch.equal(model(IDS), expected), name
        assert model.identity.weight_hash == reference.identity.weight_hash, name
        assert model.identity.key == reference.identity.key, name


def test_save_pretrained_round_trips_bit_for_bit(tmp_path, source):
    model = load_backbone(source)
    model.save_pretrained(tmp_path / "saved")
    again = load_backbone(tmp_path / "saved")
    original, copied = model.state_dict(), again.state_dict()
    assert original.keys() == copied.keys()
    assert all(torch.equal(original[k], copied[k]) for k in original)
    with torch.no_grad():
        assert torch.equal(again(IDS), model(IDS))
    assert again.identity == model.identity
    assert again.identity.random_init


def test_transformers_from_pretrained_reads_our_files(source):
    model = HyenaDNAModel.from_pretrained(source).eval()
    with torch.no_grad():
        assert torch.equal(model(IDS), load_backbone(source)(IDS))


def test_weight_hash_changes_with_any_tensor(tmp_path, source, hf_tensors):
    folder = _folder(tmp_path, source, "changed")
    changed = dict(hf_tensors)
    key = "hyena.backbone.layers.1.mixer.filter_fn.modulation.deltas"
    changed[key] = changed[key].clone()
    changed[key][0, 0, 3] += 1e-6
    save_file(changed, str(folder / "model.safetensors"))
    assert load_backbone(folder).identity.weight_hash != load_backbone(source).identity.weight_hash


def test_pickle_needing_arbitrary_code_is_refused(tmp_path, source):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = _folder(tmp_path, source, "evil")
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": Evil()}, folder / "weights.ckpt")
    with pytest.raises(InputError, match=r"arbitrary code.*system"):
        load_backbone(folder)
    assert not marker.exists()


def test_inert_config_objects_in_lightning_checkpoints_are_tolerated(tmp_path, source, hf_tensors):
    """A fake omegaconf DictConfig in hyper_parameters: loaded as a placeholder, never imported."""
    module = types.ModuleType("omegaconf.dictconfig")

    class DictConfig:
        def __init__(self, content):
            self.content = content

    DictConfig.__module__ = "omegaconf.dictconfig"
    DictConfig.__qualname__ = "DictConfig"
    module.DictConfig = DictConfig
    fakes = {"omegaconf": types.ModuleType("omegaconf"), "omegaconf.dictconfig": module}
    saved = {name: sys.modules.get(name) for name in fakes}
    sys.modules.update(fakes)
    folder = _folder(tmp_path, source, "omega")
    try:
        ckpt = {
            "state_dict": _lightning(hf_tensors, True),
            "hyper_parameters": DictConfig({"d_model": 16}),
        }
        torch.save(ckpt, folder / "weights.ckpt")
    finally:
        for name, previous in saved.items():
            if previous is None:
                del sys.modules[name]
            else:
                sys.modules[name] = previous
    model = load_backbone(folder)
    assert model.identity.weight_hash == load_backbone(source).identity.weight_hash


def test_missing_unknown_and_mismatched_keys_are_errors(tmp_path, source, hf_tensors):
    cases = {
        "missing": (
            {k: v for k, v in hf_tensors.items() if "ln_f.bias" not in k},
            "missing keys: backbone.ln_f.bias",
        ),
        "unknown": (
            {**hf_tensors, "hyena.backbone.extra.weight": torch.zeros(2)},
            "unknown keys: backbone.extra.weight",
        ),
        "shape": (
            {**hf_tensors, "hyena.backbone.ln_f.bias": torch.zeros(17)},
            r"shape mismatch for backbone.ln_f.bias: file has \[17\]",
        ),
    }
    for name, (tensors, message) in cases.items():
        folder = _folder(tmp_path, source, name)
        save_file(tensors, str(folder / "model.safetensors"))
        with pytest.raises(InputError, match=message) as info:
            load_backbone(folder)
        assert str(folder) in str(info.value)


def test_config_that_does_not_match_the_weights_is_an_error(tmp_path, source):
    folder = _folder(tmp_path, source, "bigger")
    shutil.copy(source / "model.safetensors", folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    config["max_seq_len"] = 128
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"pos_emb.z: file has \[1, 64, 5\].*\[1, 128, 5\]"):
        load_backbone(folder)


def test_config_fields_are_read_from_the_file(tmp_path, source):
    folder = _folder(tmp_path, source, "nofield")
    shutil.copy(source / "model.safetensors", folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    del config["d_inner"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"lacks the field.*d_inner"):
        load_backbone(folder)
    config["d_inner"] = 32
    config["auto_map"] = {"AutoModel": "modeling_hyena.HyenaDNAModel"}
    (folder / "config.json").write_text(json.dumps(config))
    model = load_backbone(folder)
    assert not hasattr(model.config, "auto_map")
    model.save_pretrained(tmp_path / "resaved")
    assert "auto_map" not in json.loads((tmp_path / "resaved" / "config.json").read_text())
    config["d_inner"] = 32
    config["model_type"] = "bert"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="model_type"):
        load_backbone(folder)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pad_vocab_size_multiple", 0, "pad_vocab_size_multiple must be a positive integer"),
        ("vocab_size", "12", "vocab_size must be a positive integer"),
        ("activation_freq", "x", "activation_freq must be a positive number"),
        ("layer_norm_epsilon", None, "layer_norm_epsilon must be a positive number"),
        ("layer_norm_epsilon", -1.0, "layer_norm_epsilon must be a positive number"),
        ("use_bias", "false", "use_bias must be true or false"),
        ("train_freq", "no", "train_freq must be true or false"),
    ],
)
def test_ill_typed_config_values_are_config_errors(tmp_path, source, field, value, message):
    folder = _folder(tmp_path, source, "illtyped")
    shutil.copy(source / "model.safetensors", folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message):
        load_backbone(folder)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id2label", ["LABEL_0", "LABEL_1"], "id2label must be an object"),
        ("id2label", "LABEL_0", "id2label must be an object"),
        ("id2label", {"zero": "LABEL_0"}, "id2label must be an object"),
        ("id2label", {"0": 1}, "id2label must be an object"),
        ("label2id", ["LABEL_0"], "label2id must be an object"),
        ("num_labels", "2", "num_labels must be a positive integer"),
        ("num_labels", 2.5, "num_labels must be a positive integer"),
        ("num_labels", None, "num_labels must be a positive integer"),
        ("num_labels", True, "num_labels must be a positive integer"),
        ("torch_dtype", 32, "torch_dtype must name a floating-point torch dtype"),
        ("torch_dtype", "float33", "torch_dtype must name a floating-point torch dtype"),
        ("torch_dtype", "int64", "torch_dtype must name a floating-point torch dtype"),
        ("torch_dtype", ["float32"], "torch_dtype must name a floating-point torch dtype"),
    ],
)
def test_ill_typed_transformers_keys_are_config_errors_naming_file_and_key(
    tmp_path, source, field, value, message
):
    """Keys of the -hf config.json that transformers itself reads (hyenadna.md: torch_dtype;
    id2label / label2id / num_labels of any PretrainedConfig)."""
    folder = _folder(tmp_path, source, "generic")
    shutil.copy(source / "model.safetensors", folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=message) as info:
        load_backbone(folder)
    assert str(folder / "config.json") in str(info.value)


def test_well_typed_transformers_keys_still_load(tmp_path, source):
    folder = _folder(tmp_path, source, "generic-ok")
    shutil.copy(source / "model.safetensors", folder / "model.safetensors")
    config = json.loads((folder / "config.json").read_text())
    config.update(
        id2label={"0": "NEG", "1": "POS"}, label2id={"NEG": 0, "POS": 1}, torch_dtype="float32"
    )
    (folder / "config.json").write_text(json.dumps(config))
    model = load_backbone(folder)
    assert model.config.id2label == {0: "NEG", 1: "POS"}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_inf_weights_are_refused_at_load_naming_the_tensor(
    tmp_path, source, hf_tensors, bad
):
    key = "hyena.backbone.layers.1.mlp.fc1.weight"
    assert key in hf_tensors
    damaged = {k: v.clone() for k, v in hf_tensors.items()}
    damaged[key].view(-1)[3] = bad
    folder = _folder(tmp_path, source, "nan")
    save_file(damaged, str(folder / "model.safetensors"))
    what = "1 NaN and 0 infinite" if bad != bad else "0 NaN and 1 infinite"
    with pytest.raises(InputError, match=f"backbone.layers.1.mlp.fc1.weight holds {what}"):
        load_backbone(folder)


def test_unequal_shared_frequencies_are_an_error(tmp_path, source, hf_tensors):
    folder = _folder(tmp_path, source, "freq")
    state = _lightning(hf_tensors, False)
    key = next(k for k in state if k.endswith(".5.freq"))
    state[key] = state[key] + 1
    torch.save({"state_dict": state}, folder / "weights.ckpt")
    with pytest.raises(InputError, match="shared module"):
        load_backbone(folder)


def test_missing_sources_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="no such checkpoint"):
        load_backbone(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no weights found"):
        load_backbone(tmp_path / "empty")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match="cannot resolve the Hub id 'nobody/no-such-model'"):
        load_backbone("nobody/no-such-model")


def test_hub_id_resolves_from_the_local_cache(tmp_path, source, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--LongSafari--hyenadna-fake-hf"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(source / name, snapshot / name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model = load_backbone("LongSafari/hyenadna-fake-hf")
    assert model.identity.weight_hash == load_backbone(source).identity.weight_hash


def test_identity_round_trip_and_key(source):
    identity = load_backbone(source).identity
    assert identity.random_init and identity.name == "random-tiny-1k-custom"
    data = json.loads(json.dumps(identity.to_dict()))
    assert BackboneIdentity.from_dict(data) == identity
    renamed = BackboneIdentity.from_dict({**data, "name": "elsewhere", "key": None})
    assert renamed.key == identity.key
    with pytest.raises(IncompatibleError):
        BackboneIdentity.from_dict({**data, "weight_hash": "0" * 64})
    other = BackboneIdentity.from_dict({**data, "weight_hash": "0" * 64, "key": None})
    assert other.key != identity.key


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_parameter_counts_match_the_table(preset):
    config = preset_config(preset)
    assert count_backbone_parameters(config) == PRESETS[preset].parameters
    with torch.device("meta"):
        model = HyenaDNAModel(config)
    assert sum(p.numel() for p in model.parameters()) == PRESETS[preset].parameters


def test_init_backbone_writes_a_random_hf_checkpoint(tmp_path):
    out = init_backbone("tiny-1k", tmp_path / "a", seed=1)
    config = json.loads((out / "config.json").read_text())
    assert config["embedhead_random_init"] is True and config["model_type"] == "hyenadna"
    keys = load_file(str(out / "model.safetensors")).keys()
    assert "lm_head.weight" in keys and all(k.startswith(("hyena.", "lm_head")) for k in keys)
    model = load_backbone(out)
    assert model.identity.name == "random-tiny-1k" and model.identity.random_init
    assert sum(p.numel() for p in model.parameters()) == PRESETS["tiny-1k"].parameters
    same = load_backbone(init_backbone("tiny-1k", tmp_path / "b", seed=1))
    other = load_backbone(init_backbone("tiny-1k", tmp_path / "c", seed=2))
    assert same.identity.key == model.identity.key != other.identity.key
    with pytest.raises(ConfigError, match="not an empty folder"):
        init_backbone("tiny-1k", tmp_path / "a")
    with pytest.raises(ConfigError, match="unknown preset"):
        init_backbone("huge-9g", tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_config_class_is_a_transformers_config():
    config = HyenaDNAConfig(d_model=32)
    assert config.model_type == "hyenadna" and config.vocab_rows == 16
    assert HyenaDNAConfig.from_dict(config.to_dict()).d_model == 32


def original_config(hf: dict, *, checkpoint_mixer: bool = False) -> dict:
    """The original release's config.json, key for key as in shared/spec/hyenadna.md."""
    return {
        "d_model": hf["d_model"],
        "n_layer": hf["n_layer"],
        "d_inner": hf["d_inner"],
        "vocab_size": 12,
        "resid_dropout": 0.0,
        "embed_dropout": 0.1,
        "fused_mlp": False,
        "fused_dropout_add_ln": True,
        "checkpoint_mixer": checkpoint_mixer,
        "checkpoint_mlp": False,
        "residual_in_fp32": True,
        "pad_vocab_size_multiple": 8,
        "return_hidden_state": True,
        "layer": {
            "_name_": "hyena",
            "emb_dim": 5,
            "filter_order": 64,
            "local_order": 3,
            "l_max": hf["max_seq_len"],
            "modulate": True,
            "w": 10,
            "lr": 6e-4,
            "wd": 0.0,
            "lr_pos_emb": 0.0,
        },
    }


def write_original_release(hf_folder, out, *, checkpoint_mixer: bool = False):
    """An original-layout release (config.json + Lightning weights.ckpt) of ``hf_folder``."""
    hf = json.loads((hf_folder / "config.json").read_text())
    tensors = load_file(str(hf_folder / "model.safetensors"))
    out.mkdir(parents=True)
    config = original_config(hf, checkpoint_mixer=checkpoint_mixer)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    torch.save({"state_dict": _lightning(tensors, checkpoint_mixer)}, out / "weights.ckpt")
    return out


@pytest.mark.parametrize("checkpoint_mixer", [False, True])
def test_original_release_loads_like_its_hf_twin(tmp_path, source, checkpoint_mixer):
    folder = write_original_release(source, tmp_path / "orig", checkpoint_mixer=checkpoint_mixer)
    assert "local_order" in (folder / "config.json").read_text()
    reference = load_backbone(source)
    with torch.no_grad():
        expected = reference(IDS)
    for path in (folder, folder / "weights.ckpt"):
        model = load_backbone(path)
        assert model.identity.key == reference.identity.key
        assert model.identity.config == reference.identity.config
        assert not model.identity.random_init and model.identity.name == "orig"
        with torch.no_grad():
            assert torch.equal(model(IDS), expected)


def test_original_config_missing_fields_name_the_released_key(tmp_path, source):
    folder = write_original_release(source, tmp_path / "orig")
    config = json.loads((folder / "config.json").read_text())
    for section, key in ((None, "d_model"), ("layer", "l_max"), ("layer", "local_order")):
        changed = json.loads(json.dumps(config))
        del (changed[section] if section else changed)[key]
        (folder / "config.json").write_text(json.dumps(changed))
        name = f"{section}.{key}" if section else key
        with pytest.raises(InputError, match=rf"lacks the field {name.replace('.', '[.]')}"):
            load_backbone(folder)


@pytest.mark.parametrize(
    ("section", "key", "good", "bad"),
    [
        (None, "layer_norm_epsilon", 1e-5, 1e-6),
        (None, "num_inner_mlps", 2, 3),
        ("layer", "num_inner_mlps", 2, 1),
        ("layer", "shift", 0.05, 0.0),
        ("layer", "order", 2, 3),
        (None, "hyena_order", 2, 3),
        ("layer", "modulate", True, False),
    ],
)
def test_original_fixed_fields_other_values_are_refused_by_name(
    tmp_path, source, section, key, good, bad
):
    folder = write_original_release(source, tmp_path / "orig")
    config = json.loads((folder / "config.json").read_text())
    reference = load_backbone(source).identity.key
    target = config[section] if section else config
    target[key] = good
    (folder / "config.json").write_text(json.dumps(config))
    assert load_backbone(folder).identity.key == reference
    target[key] = bad
    (folder / "config.json").write_text(json.dumps(config))
    name = f"{section}.{key}" if section else key
    with pytest.raises(ConfigError, match=rf"{name.replace('.', '[.]')}={bad!r}"):
        load_backbone(folder)


def test_original_training_only_fields_are_accepted_whatever_their_value(tmp_path, source):
    folder = write_original_release(source, tmp_path / "orig")
    config = json.loads((folder / "config.json").read_text())
    reference = load_backbone(source)
    config.update(
        resid_dropout=0.3, embed_dropout=0.5, fused_mlp=True, fused_dropout_add_ln=False,
        checkpoint_mixer=False, checkpoint_mlp=True, residual_in_fp32=False,
        return_hidden_state=False, use_bias=False,
    )  # fmt: skip
    config["layer"].update(lr=1.0, wd=0.5, lr_pos_emb=0.1, dropout=0.2, filter_dropout=0.4)
    config["layer"]["fused_fft_conv"] = True
    (folder / "config.json").write_text(json.dumps(config))
    model = load_backbone(folder)
    assert model.identity.key == reference.identity.key
    with torch.no_grad():
        assert torch.equal(model(IDS), reference(IDS))


def test_original_unknown_fields_are_refused_by_name(tmp_path, source):
    folder = write_original_release(source, tmp_path / "orig")
    config = json.loads((folder / "config.json").read_text())
    config["layer"]["num_heads"] = 4
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"layer\.num_heads"):
        load_backbone(folder)


def test_shared_tiny_backbone_fixture_and_top_level_api(tiny_backbone_dir):
    model = embedhead.backbone.load_backbone(tiny_backbone_dir)
    assert model.config.d_model == 16 and model.config.max_seq_len == 512
    assert model.identity.random_init and model.identity.name.startswith("random-")
    ids, lengths = embedhead.backbone.tokenize(["ACGT", "AC"])
    assert model(ids).shape == (2, 4, 16) and lengths.tolist() == [4, 2]


def test_unreadable_weight_files_are_clear_errors(tmp_path, source):
    folder = _folder(tmp_path, source, "garbage")
    (folder / "pytorch_model.bin").write_bytes(b"this is not a pickle")
    with pytest.raises(InputError, match=r"pytorch_model\.bin") as info:
        load_backbone(folder)
    assert "weights" in str(info.value) or "torch.load" in str(info.value)
    folder = _folder(tmp_path, source, "garbage-st")
    (folder / "model.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(InputError, match="cannot read safetensors"):
        load_backbone(folder)


def test_original_release_through_backbone_info_embed_and_predict(
    tmp_path, tiny_backbone_dir, tiny_dataset_dir, heads_tiny_store
):
    """The CLI reads an original release (folder or weights.ckpt) as its -hf twin."""
    import csv

    from click.testing import CliRunner

    from embedhead.cli.main import main
    from embedhead.dataset import load_dataset
    from embedhead.store.access import open_store

    def invoke(*args):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    folder = write_original_release(tiny_backbone_dir, tmp_path / "orig", checkpoint_mixer=True)
    hf_info = json.loads(invoke("backbone-info", tiny_backbone_dir, "--json"))
    for path in (folder, folder / "weights.ckpt"):
        info = json.loads(invoke("backbone-info", path, "--json"))
        assert info["key"] == hf_info["key"] and info["config"] == hf_info["config"]
        assert info["random_init"] is False and info["name"] == "orig"
    store = tmp_path / "orig.zarr"
    invoke(
        "embed", tiny_dataset_dir, "--backbone", folder / "weights.ckpt", "--store", store,
        "--device", "cpu", "--quiet",
    )  # fmt: skip
    ids = [sid for sid, _ in load_dataset(tiny_dataset_dir).sequences()]
    ours, theirs = open_store(store), open_store(heads_tiny_store)
    try:
        assert ours.identity["key"] == theirs.identity["key"]
        for sid in ids[:10]:
            assert (ours.get(sid) == theirs.get(sid)).all()
    finally:
        ours.close()
        theirs.close()
    run = tmp_path / "run"
    invoke(
        "train", tiny_dataset_dir, "--store", heads_tiny_store, "--out", run, "--epochs", "1",
        "--batch-size", "8", "--device", "cpu", "--quiet",
    )  # fmt: skip
    (tmp_path / "p.tsv").write_text("seq1\tseq2\nACGTACGTTTGA\tACGAACGTTTGC\nGGGCCA\tTTTAAC\n")
    outputs = []
    for backbone in (tiny_backbone_dir, folder, folder / "weights.ckpt"):
        out = tmp_path / f"scores-{len(outputs)}.tsv"
        invoke(
            "predict", run, "--backbone", backbone, "--pairs", tmp_path / "p.tsv", "--out", out,
            "--device", "cpu",
        )  # fmt: skip
        with open(out) as fh:
            outputs.append([row["probability"] for row in csv.DictReader(fh, delimiter="\t")])
    assert len(outputs[0]) == 2 and outputs[0] == outputs[1] == outputs[2]
