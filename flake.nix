{
  description = "Cerebrum: self-hosted AI code assistant (llama.cpp backend, uConsole orchestrator, REPL)";

  # Every input names a revision (docs/deployment.md, "Pinned inputs"): no flake.lock is committed, and
  # Nix locks each input to the revision in its URL, the inputs' own inputs to the revisions
  # in their flake.lock, so the same commit of this flake always means the same system.
  inputs = {
    # nixos-25.11 as nixos-uconsole's own flake.lock pins it (2025-12-29): the release that
    # nvmd/nixos-raspberrypi supports.
    nixpkgs.url = "github:NixOS/nixpkgs/89dbf01df72eb5ebe3b24a86334b12c27d68016a";
    # uConsole (CM4) hardware: kernel with the panel/keyboard patches, config.txt, device tree.
    # It builds on nvmd's nixos-raspberrypi (bootloader, firmware, RPi kernel), which its
    # flake.lock pins (4a73dcb8fbec, with argononed, flake-compat and nixos-images).
    nixos-uconsole = {
      url = "github:nixos-uconsole/nixos-uconsole/1ba6116e241aa264dcfa8a237bcd71d942679963";
      # One nixpkgs for both hosts; nixos-raspberrypi follows nixos-uconsole's nixpkgs, so it
      # gets ours too.
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      nixos-uconsole,
      ...
    }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (
        pkgs:
        let
          llama-cpp-python = pkgs.callPackage ./nix/llama-cpp-python.nix { };
        in
        {
          # The orchestrator and the REPL, without llama.cpp (what the uConsole gets).
          default = pkgs.callPackage ./nix/package.nix { };
          # The same with llama-cpp-python 0.3.36, for cerebrum-backend.
          backend = pkgs.callPackage ./nix/package.nix {
            withBackend = true;
            inherit llama-cpp-python;
          };
          inherit llama-cpp-python;
        }
      );

      # Each module has a `key`, so importing one twice (default and monitoring both import
      # backend) declares its options once.
      nixosModules = {
        backend = {
          key = "cerebrum#nixosModules.backend";
          imports = [
            (import ./nix/modules/backend.nix { inherit self; })
            ./nix/modules/tailnet.nix
          ];
        };
        orchestrator = {
          key = "cerebrum#nixosModules.orchestrator";
          imports = [
            (import ./nix/modules/orchestrator.nix { inherit self; })
            ./nix/modules/tailnet.nix
          ];
        };
        # Reads services.cerebrum-backend's port, so it brings the (disabled) backend module.
        monitoring = {
          key = "cerebrum#nixosModules.monitoring";
          imports = [
            self.nixosModules.backend
            ./nix/modules/monitoring.nix
          ];
        };
        default = {
          key = "cerebrum#nixosModules.default";
          imports = [
            self.nixosModules.backend
            self.nixosModules.orchestrator
            self.nixosModules.monitoring
          ];
        };
      };

      # Pinned model files (url, sha256, load settings), for `services.cerebrum-backend.models`.
      lib.models = import ./nix/models.nix;

      nixosConfigurations = {
        vps = nixpkgs.lib.nixosSystem {
          modules = [
            self.nixosModules.default
            ./nix/hosts/vps
          ];
        };

        uconsole = nixos-uconsole.lib.mkUConsoleSystem {
          specialArgs.cerebrum = self;
          modules = [
            nixos-uconsole.nixosModules.base
            self.nixosModules.orchestrator
            ./nix/hosts/uconsole
          ];
        };
      };

      checks.x86_64-linux =
        let
          pkgs = nixpkgs.legacyPackages.x86_64-linux;
        in
        {
          package = self.packages.x86_64-linux.default;
          backend-package = self.packages.x86_64-linux.backend;
          vm-services = import ./nix/checks/vm-services.nix { inherit self pkgs; };
        };

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
