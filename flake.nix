# A development shell with what mailspec's tests use: Python, the mail stack's
# command-line tools, MariaDB, and QEMU with mmdebstrap for the VM tier.
# (Written for Nix users; the project's CI runs on Debian through .ci/run.)
{
  description = "mailspec: a typed language and compiler for Postfix + Dovecot + Sieve mail servers";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      python = pkgs.python311.withPackages (ps: with ps; [
        lark attrs jinja2 click idna cryptography pymysql paramiko
        hypothesis pytest pytest-xdist
      ]);
    in {
      devShells.${system}.default = pkgs.mkShell {
        packages = [
          python
          pkgs.postfix pkgs.dovecot pkgs.dovecot_pigeonhole pkgs.mariadb pkgs.openssl
          pkgs.qemu pkgs.mmdebstrap pkgs.e2fsprogs
        ];
        # qemu.qmp is not packaged in nixpkgs: `pip install qemu.qmp` inside a venv.
        shellHook = ''
          export PYTHONPATH="$PWD:$PYTHONPATH"
        '';
      };
    };
}
