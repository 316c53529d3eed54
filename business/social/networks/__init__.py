"""The network connectors: one module per network, all speaking the contract of
:mod:`business.social.networks.base`."""
