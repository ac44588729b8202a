import os

# Piccolo finds its engine through this module path (app/piccolo_conf.py); set before any table is used.
os.environ.setdefault("PICCOLO_CONF", "app.piccolo_conf")
