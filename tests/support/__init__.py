"""What every test tier (and the benchmarks) shares to start, drive and check Switchboard.

`waits` (the one deadline loop), `procs` (finding and proving processes gone), `config` (the
one TOML renderer), `control` (the supervisor's control and events sockets), the harnesses
`stack` (the whole stack), `supervisor` and `worker`, the chat readers in `chat`, the stand-in
Claude CLI `standin_cli`, and the stand-in supervised children in `standin/`.

Imported as `tests.support.<module>` from the tests and from bench/; nothing here imports
pytest, so the benchmarks can use it, and nothing in production code ever imports it.
"""
