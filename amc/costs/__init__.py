"""The cost model a config names, ready for one network (registry.py: `lut:auto` built on demand, bound to the
network), measured latency tables of whole networks (latency_tables.py), and networks timed on the runtime a
cost model speaks for (measure.py). Above hwmodel (layer-level pricing) and the layer table; below the problem."""
