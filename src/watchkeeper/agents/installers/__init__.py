"""Agent installers served by the server: the agent's wheels and Debian package (built from
`agent/` by `watchkeeper agent-dist`), a shell installer for Linux and macOS and a
PowerShell installer for Windows, and the one-line commands the enrollment page shows."""
