# config.json, the board's own settings (its role, its HAN peer): read whole, replaced atomically.
import json
import os


def read_config():
    try:
        with open("config.json") as f:
            return json.load(f)
    except OSError:
        return {}
    except ValueError:
        print("config.json is not valid JSON; running unconfigured")
        return {}


def write_config(name, value):
    # written new, then renamed over the old, like every other state of the board
    config = read_config()
    config[name] = value
    with open("config.json.new", "w") as f:
        json.dump(config, f)
    os.rename("config.json.new", "config.json")
