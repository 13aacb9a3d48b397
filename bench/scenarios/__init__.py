"""One module per benchmark, each defining `SCENARIO = <a bench.harness.Scenario>`."""
