import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embedhead.errors import ConfigError
from embedhead.heads.config import HeadConfig
from embedhead.heads.models import PooledHead, ThesisHead, build_head


def test_thesis_head_shapes_and_hidden_layers():
    config = HeadConfig(d_model=6, conv_channels=5, kernel_size=3, hidden_sizes=(7, 4, 3))
    head = build_head(config)
    assert isinstance(head, ThesisHead)
    linears = [m for m in head.mlp.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 7), (7, 4), (4, 3), (3, 1)]
    x1, x2 = torch.randn(4, 11, 6), torch.randn(4, 9, 6)
    m1, m2 = torch.ones(4, 11, dtype=torch.bool), torch.ones(4, 9, dtype=torch.bool)
    assert head(x1, x2, m1, m2).shape == (4,)


def test_pooled_head_shapes():
    head = build_head(HeadConfig(d_model=6, kind="pooled", hidden_sizes=(8,)))
    assert isinstance(head, PooledHead)
    assert head(torch.randn(3, 6), torch.randn(3, 6)).shape == (3,)


@settings(max_examples=25, deadline=None)
@given(
    length=st.integers(1, 12),
    pad=st.integers(1, 8),
    kernel=st.sampled_from([1, 2, 3, 5]),
)
def test_pads_do_not_change_the_encoding(length, pad, kernel):
    torch.manual_seed(0)
    head = build_head(HeadConfig(d_model=4, conv_channels=3, kernel_size=kernel)).eval()
    x = torch.randn(1, length, 4)
    padded = torch.cat([x, torch.randn(1, pad, 4) * 100], dim=1)  # garbage in pad slots
    mask = torch.zeros(1, length + pad, dtype=torch.bool)
    mask[:, :length] = True
    plain = head.encode(x, torch.ones(1, length, dtype=torch.bool))
    torch.testing.assert_close(head.encode(padded, mask), plain, rtol=1e-5, atol=1e-6)


def test_output_transforms():
    clf = build_head(HeadConfig(d_model=2))
    raw = torch.tensor([-1.0, 0.0, 2.0])
    torch.testing.assert_close(clf.to_output(raw), torch.sigmoid(raw))
    reg = build_head(HeadConfig(d_model=2, task="regression"))
    reg.set_target_scale(0.5, 2.0)
    torch.testing.assert_close(reg.to_output(raw), raw * 2.0 + 0.5)
    assert float(reg.state_dict()["target_std"]) == 2.0  # travels with the weights


def test_dropout_default_and_config_round_trip():
    config = HeadConfig(d_model=3, hidden_sizes=(4, 2))
    assert config.dropout == 0.5
    again = HeadConfig.from_dict(config.to_dict())
    assert again == config
    assert HeadConfig.from_dict({**config.to_dict(), "hidden_sizes": [4, 2]}) == config


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "cnn"},
        {"task": "ranking"},
        {"activation": "swish"},
        {"hidden_sizes": ()},
        {"hidden_sizes": (4, 0)},
        {"hidden_sizes": 64},
        {"dropout": 1.0},
        {"kernel_size": 0},
    ],
)
def test_bad_head_config_is_refused(bad):
    with pytest.raises(ConfigError):
        HeadConfig(d_model=3, **bad)


def test_unknown_field_is_refused():
    with pytest.raises(ConfigError, match="colour"):
        HeadConfig.from_dict({"d_model": 3, "colour": "red"})
