"""Bans pushed out of Python, sans-io: the elements an nftables set must hold for the active bans
(entries.py), the libnftables JSON that puts them there (nft_json.py), the smallest transaction that
brings the kernel's sets from what they hold to what they must (sync.py), and the same bans written for
other firewalls and for an upstream provider (export.py). Stdlib only; running `nft` is the control
process's business (control/firewall_mirror.py), and `shieldwall export bans` the CLI's."""
