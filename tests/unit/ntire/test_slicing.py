"""Running one organisers' function (select_model, a forward wrapper) needs only the top-level statements it
uses: the rest of test_demo.py (utils_image and its torchvision, fvcore, the logger) is never executed."""

from __future__ import annotations

import ast
import sys
import textwrap
import traceback

import pytest

from ntire_bench.ntire.slicing import load_sliced, slice_for

DEMO = textwrap.dedent('''
    import os.path
    import sys
    import logging
    import torch
    from utils import utils_image as util           # imports torchvision at its top
    from fvcore.nn import FlopCountAnalysis
    try:
        from models.registry import REGISTRY
    except ImportError:
        REGISTRY = {}

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "extra"))
    logging.basicConfig(level=logging.INFO)
    util.configure()                                 # needs util: not kept
    SCALE = 4
    ZOO = os.path.join("model_zoo", "x")


    def helper(width):
        return width * SCALE


    def select_model(args, device):
        model_id = args.model_id
        if model_id == 0:
            name, width = f"{model_id:02}_Net", helper(2)
            paths = [p for p in (ZOO, "y")]
            tile = None
        return name, width, paths, REGISTRY.get(model_id, tile)


    def forward(img, model, tile=None):
        return model(img) * torch.ones(1)


    def main():
        print(FlopCountAnalysis, util.imread_uint)


    if __name__ == "__main__":
        main()
''')


def _kept(functions: list[str]) -> list[str]:
    return [ast.unparse(node).splitlines()[0] for node in slice_for(ast.parse(DEMO), functions).body]


def test_select_model_keeps_what_it_uses_and_nothing_of_main():
    assert _kept(["select_model"]) == [
        "import os.path", "import sys", "import logging",
        "try:",
        "sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'extra'))",
        "logging.basicConfig(level=logging.INFO)",
        "SCALE = 4", "ZOO = os.path.join('model_zoo', 'x')",
        "def helper(width):", "def select_model(args, device):",
    ]


def test_a_forward_wrapper_keeps_only_its_own_imports_and_the_standard_library_set_up():
    assert _kept(["forward"]) == [
        "import os.path", "import sys", "import logging", "import torch",
        "sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'extra'))",
        "logging.basicConfig(level=logging.INFO)", "def forward(img, model, tile=None):",
    ]


def test_a_star_import_is_kept_when_it_may_define_a_name_the_function_uses():
    tree = ast.parse("from torch import *\nimport cv2\n\ndef f(x):\n    return relu(x)\n")
    assert [ast.unparse(n) for n in slice_for(tree, ["f"]).body] == ["from torch import *", "def f(x):\n    return relu(x)"]


def test_a_function_the_file_lacks_is_a_key_error():
    with pytest.raises(KeyError, match="absent"):
        slice_for(ast.parse(DEMO), ["absent"])


def test_the_slice_runs_with_the_files_own_line_numbers(tmp_path):
    path = tmp_path / "test_demo.py"
    path.write_text("import missing_package_for_main\n\n\ndef select_model(args, device):\n"
                    "    raise RuntimeError('no model ' + str(args))\n")
    module = load_sliced(path, ["select_model"], "ntire_slicing_test_demo")
    try:
        assert module.__file__ == str(path)
        with pytest.raises(RuntimeError) as raised:
            module.select_model(7, None)
        frame = traceback.extract_tb(raised.value.__traceback__)[-1]
        assert (frame.filename, frame.lineno, frame.line) == (str(path), 5, "raise RuntimeError('no model ' + str(args))")
    finally:
        sys.modules.pop("ntire_slicing_test_demo", None)
