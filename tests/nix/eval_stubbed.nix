# Evaluates Cerebrum's NixOS modules, hosts and VM-test nodes with nixpkgs' own module system
# (lib.evalModules from a nixpkgs `lib` directory) against stub declarations of the NixOS
# options they set. No nixpkgs package set is needed, so Nix 2.8 runs it; it checks option
# declarations, types, defaults, merging, assertions and the generated configs, not NixOS'
# own option names (tests/nix/test_nix_eval.py).
{
  libPath,
  repo,
  modulesPath,
  which,
}:
let
  lib = import libPath;
  inherit (lib) mkOption types;
  anyAttrs = mkOption { type = types.lazyAttrsOf types.anything; default = { }; };
  free = extra: mkOption {
    type = types.submodule { freeformType = types.lazyAttrsOf types.anything; options = extra; };
    default = { };
  };
  fakePkg = name: { type = "derivation"; name = name; outPath = "/nix/store/fake-${name}"; };
  pkgs = {
    stdenv.hostPlatform.system = "x86_64-linux";
    formats.toml = _: {
      type = types.lazyAttrsOf types.anything;
      generate = name: value: "/fake/${name}#${builtins.toJSON value}";
    };
    fetchurl = a: "/nix/store/fake-${a.name}";
    runCommand = name: _: _: "/nix/store/fake-${name}";
  };
  self = {
    packages.x86_64-linux = { default = fakePkg "cerebrum"; backend = fakePkg "cerebrum-backend"; };
  } // { inherit (flake) nixosModules; };
  flake = (import "${repo}/flake.nix").outputs {
    inherit self;
    nixpkgs = { inherit lib; legacyPackages = { }; };
    nixos-uconsole = { };
  };
  vmTest = import "${repo}/nix/checks/vm-services.nix" {
    inherit self;
    pkgs = pkgs // { testers.runNixOSTest = t: t; callPackage = _: _: "/nix/store/fake-tiny.gguf"; curl = fakePkg "curl"; };
  };
  stubs = {
    options = {
      assertions = mkOption { type = types.listOf types.unspecified; default = [ ]; };
      warnings = mkOption { type = types.listOf types.str; default = [ ]; };
      systemd = anyAttrs;
      networking = free {
        firewall = free { trustedInterfaces = mkOption { type = types.listOf types.str; default = [ ]; }; };
      };
      environment = anyAttrs;
      users = anyAttrs;
      security = anyAttrs;
      programs = free { mosh = free { enable = mkOption { type = types.bool; default = false; }; }; };
      system = anyAttrs;
      boot = anyAttrs;
      fileSystems = anyAttrs;
      nixpkgs = anyAttrs;
      virtualisation = anyAttrs;
      sdImage = anyAttrs;
      image = anyAttrs;
      services = {
        tailscale = free { interfaceName = mkOption { type = types.str; default = "tailscale0"; }; };
        prometheus = free { port = mkOption { type = types.port; default = 9090; }; };
        grafana = free { };
        openssh = free { };
      };
    };
  };
  hosts = {
    vps = [ self.nixosModules.default "${repo}/nix/hosts/vps/default.nix" ];
    test-vps = [ vmTest.nodes.vps ];
    test-uconsole = [ vmTest.nodes.uconsole ];
    uconsole = [ self.nixosModules.orchestrator "${repo}/nix/hosts/uconsole/default.nix" ];
  };
  eval = lib.evalModules {
    specialArgs = { inherit modulesPath; cerebrum = self; };
    modules = [ stubs { _module.args = { inherit pkgs; }; } ] ++ hosts.${which};
  };
  c = eval.config;
in
{
  failed = map (a: a.message) (lib.filter (a: !a.assertion) c.assertions);
  warnings = c.warnings;
  sockets = c.systemd.sockets;
  services = lib.mapAttrs (_: s: s) c.systemd.services;
  firewall = c.networking.firewall or { };
  prometheus = c.services.prometheus;
  grafana = c.services.grafana;
  tailscale = c.services.tailscale;
  backendConfig = c.services.cerebrum-backend.configFile;
  orchestratorConfig = c.services.cerebrum-orchestrator.configFile;
}
