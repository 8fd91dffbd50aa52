# The VPS: the backend with the pinned models, reachable over the tailnet only, plus Prometheus
# and Grafana. Secrets are files the user places (sops-nix, agenix or by hand), never in the store.
{ ... }:
{
  # Keys-only SSH and a locked root (nix/modules/access.nix): put your key in
  # `cerebrum.access.authorizedKeys`.
  imports = [
    ./hardware-configuration.nix
    ../../modules/access.nix
  ];

  networking.hostName = "vps";

  services.cerebrum-backend = {
    enable = true;
    # Listen on every address; the firewall opens 9000 on tailscale0 only.
    listenAddress = "0.0.0.0";
    apiKeyFile = "/var/lib/secrets/cerebrum/api-keys";
    idleExit = 900;
    # The two 7B models by default; on a 2-4 GB VPS use the 1.5B instead:
    # models = { inherit (import ../../models.nix) "qwen2.5-coder-1.5b-instruct"; };
  };

  services.cerebrum-tailnet = {
    enable = true;
    authKeyFile = "/var/lib/secrets/tailscale/auth-key";
  };

  services.cerebrum-monitoring = {
    enable = true;
    orchestratorTargets = [ "uconsole:7000" ];
    backendApiKeyFile = "/var/lib/secrets/cerebrum/metrics-key";
    orchestratorApiKeyFile = "/var/lib/secrets/cerebrum/orchestrator-metrics-key";
    grafana.secretKeyFile = "/var/lib/secrets/grafana/secret-key";
  };

  system.stateVersion = "25.11";
}
