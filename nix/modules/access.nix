# cerebrum.access: how a person gets into a Cerebrum host, the same on every image. SSH with keys
# only, one admin account holding the keys of `cerebrum.access.authorizedKeys`, root locked, no
# password anywhere (none is known, so none can leak), and mosh reachable on the tailnet only.
#
# Overrides what nixos-uconsole's base module sets for its own first-boot setup: root's
# `initialPassword = "changeme"` (and the unit expiring it), `PermitRootLogin = "yes"`,
# `PasswordAuthentication = true`, and mosh's UDP 60000-61000 opened on every interface.
{ config, lib, ... }:
let
  cfg = config.cerebrum.access;
  inherit (lib) mkOption mkForce types;
  tailnet = config.services.tailscale.interfaceName;
in
{
  options.cerebrum.access = {
    authorizedKeys = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "ssh-ed25519 AAAAC3Nza... you@laptop" ];
      description = ''
        SSH public keys of the admin account (`cerebrum.access.user`), the only way into the host:
        there is no password on any account. Set it before building an image or deploying
        (e.g. in your own module next to `nix/hosts/<host>`); with none, nobody can log in
        (a warning says so).
      '';
    };

    user = mkOption {
      type = types.str;
      default = "cerebrum";
      description = "The admin account: in `wheel`, `sudo` without a password (it has none).";
    };
  };

  config = {
    warnings = lib.optional (cfg.authorizedKeys == [ ])
      "cerebrum.access.authorizedKeys is empty: with no password on any account, nobody can log in to ${config.networking.hostName}.";

    users.users.${cfg.user} = {
      isNormalUser = true;
      extraGroups = [ "wheel" ];
      openssh.authorizedKeys.keys = cfg.authorizedKeys;
    };
    # The admin account has no password to type.
    security.sudo.wheelNeedsPassword = false;

    # A locked root: no password (nixos-uconsole's "changeme" is dropped), no SSH login.
    users.users.root = {
      initialPassword = mkForce null;
      initialHashedPassword = mkForce null;
      hashedPassword = "!";
    };
    # nixos-uconsole expires root's password on first boot; a locked root has none to expire.
    systemd.services.force-password-change.enable = lib.mkDefault false;

    services.openssh = {
      enable = true;
      settings = {
        PasswordAuthentication = mkForce false;
        KbdInteractiveAuthentication = mkForce false;
        PermitRootLogin = mkForce "no";
      };
    };

    # mosh (on by nixos-uconsole's base module) opens its UDP range on the tailnet only.
    programs.mosh.openFirewall = mkForce false;
    networking.firewall.interfaces.${tailnet}.allowedUDPPortRanges = lib.mkIf config.programs.mosh.enable [
      {
        from = 60000;
        to = 61000;
      }
    ];
  };
}
