# The uConsole (CM4): the orchestrator, the REPL, Tailscale and SSH. The hardware (kernel with
# the uConsole's panel and keyboard patches, config.txt, device tree) comes from the
# nixos-uconsole flake; this file adds Cerebrum and the SD image.
{
  config,
  lib,
  pkgs,
  modulesPath,
  cerebrum,
  ...
}:
{
  imports = [
    (modulesPath + "/installer/sd-card/sd-image.nix")
    ../../modules/access.nix
  ];

  networking.hostName = "uconsole";

  services.cerebrum-orchestrator = {
    enable = true;
    # The REPL on the uConsole talks to it on loopback (export CEREBRUM_CLIENT_KEY=<a key
    # from apiKeyFile>, or cerebrum --key-file FILE); the VPS scrapes it over the tailnet.
    listenAddress = "0.0.0.0";
    apiKeyFile = "/var/lib/secrets/cerebrum/api-keys";
    upstream = "http://vps:9000";
    upstreamApiKeyFile = "/var/lib/secrets/cerebrum/vps-key";
  };

  services.cerebrum-tailnet = {
    enable = true;
    authKeyFile = "/var/lib/secrets/tailscale/auth-key";
  };

  # The REPL (`cerebrum`), without llama.cpp.
  environment.systemPackages = [ cerebrum.packages.${pkgs.stdenv.hostPlatform.system}.default ];

  # Keys-only SSH, a locked root (nixos-uconsole's base module sets root's password to
  # "changeme"), mosh on the tailnet only: nix/modules/access.nix. Your key goes in
  # `cerebrum.access.authorizedKeys` (e.g. in a module of your own next to this file).
  users.users.${config.cerebrum.access.user}.extraGroups = [
    "video"
    "input"
  ];

  # As nixos-uconsole's own image does (its flake, mkUConsoleImage): the firmware partition
  # gets the kernel, DTBs and config.txt from nixos-raspberrypi's bootloader module;
  # mkUConsoleSystem already mounts it at /boot/firmware.
  image.baseName = lib.mkOverride 40 "cerebrum-uconsole-cm4";
  sdImage = {
    firmwareSize = 1024;
    compressImage = false;
    populateFirmwareCommands = ''
      ${config.boot.loader.raspberryPi.firmwarePopulateCmd} \
        -c ${config.system.build.toplevel} \
        -f ./firmware
    '';
    populateRootCommands = ''
      mkdir -p ./files/boot/firmware
      ${config.boot.loader.raspberryPi.bootPopulateCmd} \
        -c ${config.system.build.toplevel} \
        -b ./files/boot
    '';
  };

  system.stateVersion = "25.11";
}
