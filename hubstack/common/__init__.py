"""What the host and the images agree on, said once.

Standard library only: the hub and tls images copy this package whole
(`hubstack build` puts it in their build context), so the CLI, the hub's
configuration, the spawner, the access check and the TLS entrypoint import
the same names, paths, ports and settings.

- contract: names of an instance's images, volumes, networks, containers and
  labels; paths inside the containers; the hub's port.
- registry: every setting, with its default, help and who reads it.
- parse: the one-line SettingsError and the value parsers.
- settings: load() -> Settings, the checked settings of one instance.
- https: the HTTPS settings and the certificate-file check.
- login: the production log-in (OAuth provider, approval sources, secrets).
- policy: what may start a hub (dev mode on loopback, or a complete production set-up).
"""
