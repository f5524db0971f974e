//! The engine end to end: templates, XCom, python, paused DAGs, versions, catchup, and the run commands of the CLI.
