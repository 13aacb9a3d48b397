<#
  Watchkeeper agent installer for Windows, served by the Watchkeeper server. NOT TESTED in
  Watchkeeper's CI (which runs on Linux): see docs/agent.md.

  Run in an elevated PowerShell (the enrollment page shows the exact line):
    & ([scriptblock]::Create((irm '<server>/agent/v1/install.ps1'))) -Token 'wke_…'
    & ([scriptblock]::Create((irm '<server>/agent/v1/install.ps1'))) -Uninstall [-Purge]

  Puts the agent in a virtual environment of its own (C:\Program Files\Watchkeeper Agent\venv)
  built from the wheel this server serves, enrolls with this server and registers the agent
  to start at boot as SYSTEM, restarted when it stops. It is a scheduled task rather than a
  Windows service: python.exe does not speak to the Service Control Manager, and the agent
  ships no service wrapper. Idempotent: run it again to upgrade; an agent already enrolled
  keeps its identity (-Reenroll enrolls it again as a new agent).
#>
param(
  [string]$Token = "",
  [switch]$Reenroll,
  [switch]$NoStart,
  [switch]$Uninstall,
  [switch]$Purge
)
$ErrorActionPreference = "Stop"
# --- values written by the server ---

$Prefix = Join-Path $env:ProgramFiles "Watchkeeper Agent"
$Venv = Join-Path $Prefix "venv"
$Agent = Join-Path $Venv "Scripts\watchkeeper-agent.exe"
$State = Join-Path $env:ProgramData "Watchkeeper Agent"
$TaskName = "Watchkeeper Agent"

function Say($text) { Write-Host "watchkeeper-agent: $text" }

$principal = New-Object Security.Principal.WindowsPrincipal(
  [Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
  throw "Run it in an elevated PowerShell (Run as administrator)."
}

function Stop-Agent {
  $task = Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
  if ($task) {
    Stop-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
    Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
  }
}

if ($Uninstall) {
  Stop-Agent
  if (Test-Path $Prefix) { Remove-Item -Recurse -Force $Prefix }
  if ($Purge) {
    if (Test-Path $State) { Remove-Item -Recurse -Force $State }
    Say "removed, state included"
  } else {
    Say "removed; the agent's key and spool stay in $State (-Purge removes them)"
  }
  return
}

# --- Python --------------------------------------------------------------------------------
$Python = $null
foreach ($candidate in @("py", "python")) {
  $cmd = Get-Command $candidate -ErrorAction SilentlyContinue
  if ($cmd) { $Python = $cmd.Source; break }
}
if (-not $Python) {
  throw "Python 3.11 or newer is required (winget install Python.Python.3.12)."
}
$PyArgs = @()
if ((Split-Path -Leaf $Python) -eq "py.exe") { $PyArgs = @("-3") }
& $Python @PyArgs -c "import sys; sys.exit(sys.version_info < (3, 11))"
if ($LASTEXITCODE -ne 0) { throw "The agent needs Python 3.11 or newer." }

# --- The virtual environment -----------------------------------------------------------------
$installed = ""
if (Test-Path (Join-Path $Venv "Scripts\python.exe")) {
  $installed = & (Join-Path $Venv "Scripts\python.exe") -c `
    "import importlib.metadata as m; print(m.version('watchkeeper-agent'))" 2>$null
}
if ($installed -eq $WkVersion -and (Test-Path $Agent)) {
  Say "agent $WkVersion already installed in $Venv"
} else {
  Say "installing agent $WkVersion into $Venv"
  $tmp = Join-Path ([IO.Path]::GetTempPath()) ([Guid]::NewGuid().ToString())
  New-Item -ItemType Directory -Path $tmp | Out-Null
  try {
    $wheel = Join-Path $tmp $WkWheel
    Invoke-WebRequest -UseBasicParsing -Uri "$WkServer/agent/v1/dist/$WkWheel" -OutFile $wheel
    if ((Get-FileHash -Algorithm SHA256 $wheel).Hash.ToLower() -ne $WkWheelSha256) {
      throw "The downloaded $WkWheel does not match its SHA-256: not installed."
    }
    New-Item -ItemType Directory -Force -Path $Prefix | Out-Null
    Stop-Agent
    if (Test-Path $Venv) { Remove-Item -Recurse -Force $Venv }
    & $Python @PyArgs -m venv $Venv
    if ($LASTEXITCODE -ne 0) { throw "Python could not create a virtual environment." }
    $pip = @("-m", "pip", "--disable-pip-version-check", "--quiet", "install",
             "--find-links", "$WkServer/agent/v1/dist/")
    if ($WkInsecure -eq "1") { $pip += @("--trusted-host", ([Uri]$WkServer).Host) }
    # Windows needs the wheels of its own platform: PyPI provides what the server has not.
    & (Join-Path $Venv "Scripts\python.exe") @pip $wheel
    if ($LASTEXITCODE -ne 0) { throw "pip could not install the agent; run the installer again." }
  } finally {
    Remove-Item -Recurse -Force $tmp -ErrorAction SilentlyContinue
  }
}

# --- Enrollment ------------------------------------------------------------------------------
$enrollment = Join-Path $State "enrollment.json"
if ((Test-Path $enrollment) -and -not $Reenroll) {
  Say "already enrolled ($enrollment); -Reenroll enrolls again as a new agent"
} else {
  if (-not $Token) { throw "An enrollment token is needed: -Token 'wke_…' (Agents › Enrollment)." }
  New-Item -ItemType Directory -Force -Path $State | Out-Null
  # The state holds the agent's private key: SYSTEM and Administrators only.
  & icacls.exe $State /inheritance:r /grant:r "SYSTEM:(OI)(CI)F" "Administrators:(OI)(CI)F" | Out-Null
  $enrollArgs = @("--state-dir", $State, "enroll", "--server", $WkServer, "--token", $Token)
  if ($WkInsecure -eq "1") { $enrollArgs += "--insecure" }
  if ($WkSignerFingerprint) { $enrollArgs += @("--signer-fingerprint", $WkSignerFingerprint) }
  & $Agent @enrollArgs
  if ($LASTEXITCODE -ne 0) { throw "Enrollment failed (see above)." }
  Say "enrolled with $WkServer"
}

# --- Start at boot -----------------------------------------------------------------------------
Stop-Agent
$action = New-ScheduledTaskAction -Execute $Agent -Argument "--state-dir `"$State`" run"
$trigger = New-ScheduledTaskTrigger -AtStartup
$settings = New-ScheduledTaskSettingsSet -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
  -ExecutionTimeLimit ([TimeSpan]::Zero) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
  -StartWhenAvailable -Priority 7
$taskPrincipal = New-ScheduledTaskPrincipal -UserId "SYSTEM" -LogonType ServiceAccount -RunLevel Highest
Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings `
  -Principal $taskPrincipal -Description "Watchkeeper endpoint agent" | Out-Null
if ($NoStart) {
  Say "registered, not started (-NoStart)"
} else {
  Start-ScheduledTask -TaskName $TaskName
  Say "running: Get-ScheduledTask -TaskName '$TaskName'"
}
