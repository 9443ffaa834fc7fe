"""``make mutation``: mutation testing of the security- and correctness-critical modules.

mutmut mutates the code inside functions; module-level constants (regexes, field lists, limits) it
leaves alone, so :mod:`tools.mutation.constants` holds a small table of our own for those. The score
per module is killed / (mutants - equivalent); :data:`tools.mutation.report.FLOOR` is the least each
listed module may score.
"""
