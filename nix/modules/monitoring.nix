# services.cerebrum-monitoring: Prometheus scraping both services and Grafana with the Cerebrum
# dashboard (nix/grafana/cerebrum.json), on the VPS.
#
# A scrape of a socket-activated port starts the service, and every request (a scrape too)
# counts as activity for --idle-exit. So:
#   - the orchestrator (light, no model, idle exit 0 by default) is scraped every
#     `orchestratorInterval`; its metrics carry requests, shedding, breakers, TTFT per route,
#     the pipeline's reduction and tokens;
#   - the backend is scraped every `backendInterval`, which must be longer than its idleExit:
#     a scrape then starts only the Python process (models load lazily, on the first
#     completion), and the backend still idles out between scrapes and gives its RAM back. While
#     users are active it runs anyway and its counters are scraped from the live process.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.cerebrum-monitoring;
  inherit (lib) mkEnableOption mkOption mkIf types;
  backend = config.services.cerebrum-backend;
  creds = "/run/credentials/prometheus.service";
  seconds =
    s:
    let
      m = builtins.match "([0-9]+)(s|m|h)" s;
      n = lib.toInt (builtins.elemAt m 0);
      unit = builtins.elemAt m 1;
    in
    if m == null then 0 else n * ({ s = 1; m = 60; h = 3600; }).${unit};
  auth =
    name: file:
    lib.optionalAttrs (file != null) {
      authorization = {
        type = "Bearer";
        credentials_file = "${creds}/${name}";
      };
    };
  dashboards = pkgs.runCommand "cerebrum-grafana-dashboards" { } ''
    mkdir -p $out
    cp ${../grafana/cerebrum.json} $out/cerebrum.json
  '';
in
{
  options.services.cerebrum-monitoring = {
    enable = mkEnableOption "Prometheus and Grafana for Cerebrum";

    backendTarget = mkOption {
      type = types.str;
      default = "127.0.0.1:${toString backend.port}";
      defaultText = lib.literalExpression ''"127.0.0.1:''${toString config.services.cerebrum-backend.port}"'';
      description = "host:port of the backend's /metrics.";
    };

    orchestratorTargets = mkOption {
      type = types.listOf types.str;
      default = [ "uconsole:7000" ];
      description = "host:port of each orchestrator's /metrics (the uConsole by its tailnet name).";
    };

    backendInterval = mkOption {
      type = types.strMatching "[0-9]+(s|m|h)";
      default = "30m";
      description = ''
        Scrape interval of the backend. Keep it longer than services.cerebrum-backend.idleExit,
        else scrapes keep the backend (and a loaded model) resident forever.
      '';
    };

    orchestratorInterval = mkOption {
      type = types.strMatching "[0-9]+(s|m|h)";
      default = "15s";
      description = "Scrape interval of the orchestrators.";
    };

    backendApiKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "A key the backend accepts, for Prometheus (LoadCredential on prometheus.service).";
    };

    orchestratorApiKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = "A key the orchestrators accept, for Prometheus (LoadCredential).";
    };

    grafana = {
      port = mkOption {
        type = types.port;
        default = 3000;
        description = "Grafana's port (bound to 127.0.0.1; reach it with an SSH tunnel or the tailnet).";
      };
      listenAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        description = "Grafana's address.";
      };
      secretKeyFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = "/run/secrets/grafana-secret-key";
        description = "File with Grafana's `secret_key` (read with `$__file{…}`, never in the store).";
      };
      openTailnetFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open Grafana's port on the tailnet interface only.";
      };
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.grafana.secretKeyFile != null;
        message = "services.cerebrum-monitoring.grafana.secretKeyFile is needed (Grafana's secret_key).";
      }
    ];

    warnings = lib.optional (backend.enable && backend.idleExit > 0
      && seconds cfg.backendInterval <= backend.idleExit)
      "services.cerebrum-monitoring.backendInterval (${cfg.backendInterval}) is not longer than the backend's idleExit (${toString backend.idleExit} s): scrapes will keep it resident.";

    services.prometheus = {
      enable = true;
      listenAddress = "127.0.0.1";
      # credentials_file paths exist only at run time (systemd credentials).
      checkConfig = "syntax-only";
      # The alert rules deploy/prometheus/ ships, this very file (one source for both).
      ruleFiles = [ ../../deploy/prometheus/cerebrum-rules.yml ];
      scrapeConfigs = [
        ({
          job_name = "cerebrum-backend";
          scrape_interval = cfg.backendInterval;
          scrape_timeout = "10s";
          metrics_path = "/metrics";
          static_configs = [ { targets = [ cfg.backendTarget ]; } ];
        } // auth "backend-key" cfg.backendApiKeyFile)
        ({
          job_name = "cerebrum-orchestrator";
          scrape_interval = cfg.orchestratorInterval;
          scrape_timeout = "10s";
          metrics_path = "/metrics";
          static_configs = [ { targets = cfg.orchestratorTargets; } ];
        } // auth "orchestrator-key" cfg.orchestratorApiKeyFile)
      ];
    };

    systemd.services.prometheus.serviceConfig.LoadCredential =
      lib.optional (cfg.backendApiKeyFile != null) "backend-key:${cfg.backendApiKeyFile}"
      ++ lib.optional (cfg.orchestratorApiKeyFile != null) "orchestrator-key:${cfg.orchestratorApiKeyFile}";

    services.grafana = {
      enable = true;
      settings = {
        server = {
          http_addr = cfg.grafana.listenAddress;
          http_port = cfg.grafana.port;
        };
        security.secret_key = "$__file{${cfg.grafana.secretKeyFile}}";
        analytics.reporting_enabled = false;
      };
      provision = {
        enable = true;
        datasources.settings.datasources = [
          {
            name = "Prometheus";
            uid = "prometheus";
            type = "prometheus";
            access = "proxy";
            url = "http://127.0.0.1:${toString config.services.prometheus.port}";
            isDefault = true;
          }
        ];
        dashboards.settings.providers = [
          {
            name = "Cerebrum";
            options.path = dashboards;
          }
        ];
      };
    };

    networking.firewall.interfaces.${config.services.tailscale.interfaceName}.allowedTCPPorts =
      mkIf cfg.grafana.openTailnetFirewall [ cfg.grafana.port ];
  };
}
