"""The test harness every RDM test builds on: real servers, a real worker, a real web server."""
