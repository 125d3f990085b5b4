"""Fault drills: replica kill behind the gateway, converter crash, bad-input corpus, gateway auth, hostile input
(oversized bodies, open proxy, abandoned requests, fuzz) and orphans.

Each drill returns `GoalResult` rows (drill, goal, measured, pass); `pipeline.drills.table` prints them and
writes reports/drills.md. A short form of every drill runs in `make test`; `make drills` runs the full form.
"""
