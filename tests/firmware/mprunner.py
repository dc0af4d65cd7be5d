# The firmware test runner on MicroPython. The virtual board harness (board.mjs --test MODULE) calls
# load() once, then run_one() for each test as its own top-level call, so the port collects garbage
# between tests and the harness can check the live heap after each. It prints PASS name, or FAIL name
# and the traceback. Under CPython, pytest runs the same test modules itself.
import sys

_module = None


def load(module_name):
    global _module
    _module = __import__(module_name)
    # __dict__, not dir(): MicroPython's dir() of a module misses names added to it at run time.
    return sorted(name for name in _module.__dict__ if name.startswith("test_"))


def run_one(name):
    try:
        getattr(_module, name)()
    except Exception as error:  # a failing test is reported, then the next one runs
        print("FAIL", name)
        sys.print_exception(error)
        return False
    print("PASS", name)
    return True
