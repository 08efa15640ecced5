from click.testing import CliRunner

from embedhead.cli.main import main


def test_help_lists_commands_with_summaries():
    result = CliRunner().invoke(main, ["--help"], prog_name="embedhead")
    assert result.exit_code == 0, result.output
    assert "Usage: embedhead" in result.output
    for name, command in main.commands.items():
        assert name in result.output
        assert command.get_short_help_str(), f"{name} has no one-line summary"


def test_every_command_help_has_an_example():
    runner = CliRunner()
    for name, command in main.commands.items():
        subcommands = getattr(command, "commands", None)
        targets = [[name, sub] for sub in subcommands] if subcommands else [[name]]
        for args in targets:
            result = runner.invoke(main, [*args, "--help"])
            assert result.exit_code == 0, (args, result.output)
            assert "embedhead " + " ".join(args) in result.output.split("Options:")[0], (
                f"`embedhead {' '.join(args)} --help` shows no example"
            )
