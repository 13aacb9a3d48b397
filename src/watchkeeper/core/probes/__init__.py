"""Network probes shared by inventory discovery and the monitoring poller: ICMP echo (one
socket shared by every ping of an event loop, `icmp.Pinger`), TCP connect (`tcp.connect`)
and SNMP v2c/v3 GET and walk (`snmp.get`, `snmp.walk`). Each answers what it saw; what
that means (a host is alive, a check is critical) is the caller's business.
"""
