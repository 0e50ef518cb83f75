// Where bootlace keeps things, all taken under --root by RootFs (tests and image builds use a folder; production "/").

export const paths = {
  bakedFile: "/etc/bootlace/bootlace.yaml",
  bakedDir: "/etc/bootlace/conf.d",
  state: "/var/lib/bootlace/state.json",
  lock: "/run/bootlace.lock",
};
