"""Addresses that are not on the public internet, as the SSRF guards' tests name them:
each reaches a private, loopback, link-local, reserved or documentation host, some
wrapped in an IPv6 form (IPv4-mapped, 6to4, IPv4-compatible, NAT64, SIIT-translated)."""

NOT_PUBLIC = [
    "10.0.0.1", "::ffff:10.0.0.1", "2002:0a00:0001::1", "::a00:1", "64:ff9b:1::a00:1",
    "fec0::1", "100::1", "192.88.99.1", "169.254.169.254", "fd00::1", "0.0.0.0",
    "::ffff:0:a00:1", "::ffff:0:7f00:1", "2002:7f00:1::1", "5f00::1", "3fff::1",
    "100:0:0:1::1", "2001:db8::1"]
