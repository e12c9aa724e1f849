"""The run's settings that decide how much each image is sampled (runner/context.py)."""

from __future__ import annotations

import math

import pytest

from ntire_bench.runner.context import HEADLINE_TARGET_CPU, RunConfig


def test_on_cpu_each_image_is_sampled_to_what_the_headline_needs():
    config = RunConfig()
    # Set14: the headline averages 14 medians, so each may be known to 1.5%·√14 for the mean's ±1.5%
    assert config.image_target("cpu", 14) == pytest.approx(HEADLINE_TARGET_CPU * math.sqrt(14))
    assert config.image_target("cpu", 14) == pytest.approx(0.0561, abs=1e-4)
    assert config.image_target("cpu", 100) == pytest.approx(0.15)
    # a handful of images: never looser per image than the default, whatever the headline would allow
    assert config.image_target("cpu", 1) == config.image_target("cpu", 4) == 0.03
    assert config.image_target("cpu", 5) == pytest.approx(HEADLINE_TARGET_CPU * math.sqrt(5))


def test_a_given_target_and_cuda_s_default_hold_for_every_image():
    assert RunConfig(target=0.01).image_target("cpu", 100) == 0.01
    assert RunConfig().image_target("cuda:0", 100) == 0.005
