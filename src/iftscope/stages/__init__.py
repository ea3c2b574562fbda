"""The stage layer: each stage as one library function with I/O at its edges.

probe, intervene, train, evaluate, analyse and report, each taking typed configs and explicit
paths (or a RunFolder). The CLI commands and the study both call these and nothing below them, so
the score cache, resume-after-crash and atomic writes are the same however a stage is run. The
cores they wrap (probe.knowledge, intervene.groups, train.sft, evaluate.qa, analyse.*) are
functions between frozen records with no file I/O.
"""
