"""The `odqa` command: dispatch, errors without tracebacks, options from a file, wandb opt-in."""
import subprocess
import sys

import pytest

from odqa.cli import COMMANDS, main
from odqa.errors import ConfigError


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_exit_code(capsys):
    assert main(["tran-mrc"]) == 2
    assert "unknown command 'tran-mrc'" in capsys.readouterr().err


@pytest.mark.parametrize("command, required", [
    ("retrieve", ["--questions", "q.json", "--output", "r.csv"]), ("infer", ["--model", "m", "--dataset_path", "d"]),
    ("serve", ["--model", "m", "--index", "i"]), ("evaluate", ["--dataset", "d", "--predictions", "p"])])
def test_unknown_options_are_one_line_with_a_suggestion(command, required, capsys):
    assert main([command, *required, "--top_kk", "3", "--frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"odqa {command}: error: unknown options --top_kk") and "\n" not in err
    assert "--frobnicate" in err and "Traceback" not in err
    if command in ("retrieve", "serve"):
        assert "did you mean --top_k?" in err


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["retrieve", "--help"])
    assert "passages per question. (default: 10)" in " ".join(capsys.readouterr().out.split())


def test_options_from_yaml_file(tmp_path):
    from odqa.reader.train import ReaderArguments, ReaderDataArguments
    from odqa.utils.args import parse_cli

    path = tmp_path / "run.yaml"
    path.write_text("model: minilm\nhead: cnn\nmax_seq_len: 256\nconcat_eval: true\n", encoding="utf-8")
    reader, data = parse_cli([ReaderArguments, ReaderDataArguments], [str(path)], prog="t", description="")
    assert (reader.head, data.max_seq_len, data.concat_eval) == ("cnn", 256, True)
    with pytest.raises(ConfigError, match="options file not found"):
        parse_cli([ReaderArguments], [str(tmp_path / "missing.yaml")], prog="t", description="")


def test_old_option_names_are_aliases_listed_after_odqas_own():
    from odqa.reader.train import ReaderArguments, ReaderDataArguments, ReaderTrainingArguments

    from odqa.utils.args import parse_cli

    types = [ReaderArguments, ReaderDataArguments, ReaderTrainingArguments]
    _, data, training = parse_cli(types, ["--evaluation_strategy=steps", "--dataset_path", "d", "--stride_len", "32",
                                          "--output_dir", "o"], prog="t", description="")
    assert (str(training.eval_strategy.value if hasattr(training.eval_strategy, "value") else training.eval_strategy),
            data.dataset_dir, data.doc_stride) == ("steps", "d", 32)
    from transformers import HfArgumentParser

    help_text = HfArgumentParser(types).format_help()
    lines = help_text.splitlines()
    for ours, theirs in (("--dataset_dir", "--dataset_path"), ("--doc_stride", "--stride_len"),
                         ("--eval_strategy", "--evaluation_strategy")):
        [line] = [line for line in lines if line.strip().startswith(ours + " ")]
        assert theirs in line  # odqa's name first, the old one after it


def test_wandb_is_opt_in(monkeypatch, tmp_path):
    """Without --wandb_project nothing imports wandb; with it, a missing wandb is a clear error."""
    from odqa.reader import train

    monkeypatch.setitem(sys.modules, "wandb", None)  # importing wandb now fails
    args = train.ReaderTrainingArguments(output_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="pip install wandb"):
        train._init_wandb(train.ReaderArguments(wandb_project="p"), args, {})
    assert args.report_to in ("none", ["none"], [])


def test_python_m_odqa_version():
    out = subprocess.run([sys.executable, "-m", "odqa", "--version"], capture_output=True, text=True, check=True)
    import odqa

    assert out.stdout.strip() == odqa.__version__


def test_train_mrc_help_shows_odqas_options_before_the_inherited_ones():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "odqa", "train-mrc", "--help"], capture_output=True, text=True,
                         check=True).stdout
    groups = [line for line in out.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert groups[-1] == "every other transformers TrainingArguments option:"
    assert out.index("\n  --model MODEL") < out.index("\n  --output_dir OUTPUT_DIR") < out.index("\n  --adam_beta1")
    own = out[out.index("training: odqa's options and defaults:"):out.index(groups[-1])]
    assert "--learning_rate" in own and "--resume_from_checkpoint" not in own and "--adam_beta1" not in own
    assert out.splitlines()[0].startswith("usage: odqa train-mrc [--option VALUE ...]")

