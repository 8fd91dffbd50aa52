# services.cerebrum-tailnet: joins the host to the tailnet the backend and orchestrator talk over.
# Their ports are opened by their own modules on the tailnet interface only.
{ config, lib, ... }:
let
  cfg = config.services.cerebrum-tailnet;
  inherit (lib) mkEnableOption mkOption mkIf types;
in
{
  options.services.cerebrum-tailnet = {
    enable = mkEnableOption "Tailscale for Cerebrum's hosts";

    authKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      example = "/run/secrets/tailscale-auth-key";
      description = ''
        Tailscale auth key file, passed through to `services.tailscale.authKeyFile` so the host
        joins the tailnet unattended on first boot. null: run `tailscale up` by hand.
      '';
    };

    extraUpFlags = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--ssh" ];
      description = "Passed to `services.tailscale.extraUpFlags`.";
    };
  };

  config = mkIf cfg.enable {
    services.tailscale = {
      enable = true;
      inherit (cfg) authKeyFile extraUpFlags;
      # Tailscale's own WireGuard UDP port, for direct connections.
      openFirewall = true;
    };
    networking.firewall.enable = true;
    assertions = [
      {
        # A trusted tailnet interface would open every port on it, not just Cerebrum's.
        assertion = !(lib.elem config.services.tailscale.interfaceName config.networking.firewall.trustedInterfaces);
        message = "services.cerebrum-tailnet: keep the tailnet interface out of networking.firewall.trustedInterfaces.";
      }
    ];
  };
}
