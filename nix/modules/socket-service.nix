# One socket-activated Cerebrum service, as both service modules need it: the socket unit, the
# hardened service that serves the inherited socket with `--idle-exit`, the rule that a
# non-loopback address needs keys, and the port opened on the tailnet only. The modules pass
# what differs (a plain function, not a module).
lib:
{
  name, # unit name, e.g. "cerebrum-backend"
  description,
  cfg, # the module's options: package listenAddress port idleExit apiKeyFile tailnet…
  configFile,
  keysVariable, # the env var naming the API-key file, e.g. CEREBRUM_BACKEND_API_KEYS_FILE
  restartSec,
  credentials ? [ ], # further LoadCredential entries
  serviceConfig ? { }, # further or overriding [Service] settings
}:
let
  loopback = lib.elem cfg.listenAddress [
    "127.0.0.1"
    "::1"
    "localhost"
  ];
in
{
  assertions = [
    {
      assertion = loopback || cfg.apiKeyFile != null;
      message = "services.${name}: a non-loopback listenAddress needs apiKeyFile.";
    }
  ];

  systemd.sockets.${name} = {
    description = "${description} socket";
    wantedBy = [ "sockets.target" ];
    listenStreams = [
      (if lib.hasInfix ":" cfg.listenAddress then "[${cfg.listenAddress}]:${toString cfg.port}"
       else "${cfg.listenAddress}:${toString cfg.port}")
    ];
    socketConfig.Backlog = 256;
  };

  systemd.services.${name} = {
    inherit description;
    requires = [ "${name}.socket" ];
    after = [
      "${name}.socket"
      "network.target"
    ];
    environment = {
      XDG_CACHE_HOME = "%C/${name}";
      HOME = "%S/${name}";
    }
    // lib.optionalAttrs (cfg.apiKeyFile != null) {
      ${keysVariable} = "%d/api-keys";
    };
    serviceConfig = import ./hardening.nix // {
      ExecStart = "${lib.getExe' cfg.package name} --config ${configFile} --idle-exit ${toString cfg.idleExit}";
      Restart = "on-failure";
      RestartSec = restartSec;
      StateDirectory = name;
      CacheDirectory = name;
      LoadCredential = lib.optional (cfg.apiKeyFile != null) "api-keys:${cfg.apiKeyFile}" ++ credentials;
    } // serviceConfig;
  };

  networking.firewall.interfaces.${cfg.tailnetInterface}.allowedTCPPorts =
    lib.mkIf cfg.openTailnetFirewall [ cfg.port ];
}
