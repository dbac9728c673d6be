"""What the command-line programs share at the console: a duration as they print it, and Ctrl-C or SIGTERM as a
KeyboardInterrupt named by its signal, with the exit status it gives."""
import signal


def format_duration(seconds):
    """`4m05s`, or `1h02m03s` from an hour up."""
    seconds = int(round(seconds))
    return f'{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s' if seconds >= 3600 else \
        f'{seconds // 60}m{seconds % 60:02d}s'


def interrupt_on_sigterm(signum, frame):
    """The programs' SIGTERM handler: SIGTERM stops them as Ctrl-C does, so that what Ctrl-C saves is saved; the
    KeyboardInterrupt carries the signal's name (signal_name)."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def signal_name(interrupt):
    """The signal behind a KeyboardInterrupt: the name interrupt_on_sigterm gave it, else SIGINT (Ctrl-C)."""
    return interrupt.args[0] if interrupt.args else 'SIGINT'


def signal_exit_code(interrupt):
    """The exit status of a program that an interrupt stopped: 128 + the signal's number, as shells give it."""
    return 128 + signal.Signals[signal_name(interrupt)].value
