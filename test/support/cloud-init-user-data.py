"""Runs cloud-init's own code (an unpacked Debian package on PYTHONPATH) on one user-data file, as a boot would.

    PYTHONPATH=.cache/cloud-init-trixie/usr/lib/python3/dist-packages \
        /usr/bin/python3 test/support/cloud-init-user-data.py USER_DATA:ROOT...

Steps, each cloud-init's code, in a scratch folder that stands for /var/lib/cloud and /run/cloud-init:
  1. the part walker: stages.Init.consume_data() on a datasource whose user-data is the file (includes are not
     fetched: documented examples have none), with instance data for jinja templates;
  2. the schema: the merged cloud-config the walker wrote, checked as a boot checks it (a warning when invalid), and
     by validate_cloudconfig_file(), the function
     `cloud-init schema -c FILE` runs (the command itself is not run: it would discover a datasource and write
     /run/cloud-init on this machine);
  3. write_files: the write-files module's handle() on that cloud-config, every path taken under ROOT.
Every log record at WARNING or above is collected: since cloud-init 24.1 any of them makes `cloud-init status`
report "degraded". Prints a JSON list, one object per USER_DATA: version, warnings, schema_errors, cloud_config,
written (the paths write_files wrote, as the cloud-config names them).
"""

import copy
import inspect
import json
import logging
import os
import shutil
import sys
import tempfile
import types

from cloudinit import helpers, sources, stages, util
from cloudinit import version as ci_version
from cloudinit.config import cc_write_files
from cloudinit.config.schema import (
    SchemaValidationError,
    get_schema,
    validate_cloudconfig_file,
    validate_cloudconfig_schema,
)

# What EC2's datasource would give a jinja template (instance-data.json's shape: v1 keys and ds.meta_data).
INSTANCE_DATA = {
    "v1": {
        "cloud_name": "aws",
        "platform": "ec2",
        "instance_id": "i-0123456789abcdef0",
        "local_hostname": "ip-10-0-0-12",
        "region": "eu-west-1",
        "availability_zone": "eu-west-1a",
        "distro": "debian",
    },
    "ds": {"meta_data": {"instance-id": "i-0123456789abcdef0", "local-ipv4": "10.0.0.12"}},
}


class Collector(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append("%s: %s" % (record.name, record.getMessage()))


class UserDataSource(sources.DataSource):
    """A datasource whose user-data is the file (cloud-init's tests use one like it)."""

    dsname = "BootlaceTest"

    def __init__(self, sys_cfg, distro, paths, user_data):
        super().__init__(sys_cfg, distro, paths)
        self.metadata = {"instance-id": INSTANCE_DATA["v1"]["instance_id"]}
        self.userdata_raw = user_data
        self.vendordata_raw = None
        self.vendordata2_raw = None

    def _get_data(self):
        return True


# The folders cloud-init may write into, for the user-data being run.
allowed = []


def confine_writes():
    """Nothing outside them: a stray default path would write into this machine's /var/lib/cloud or /run/cloud-init."""

    def guard(name, original):
        def guarded(path, *args, **kwargs):
            real = os.path.realpath(path) + os.sep
            if not any(real.startswith(os.path.realpath(a) + os.sep) for a in allowed):
                raise RuntimeError("cloud-init would write %s, outside the scratch folder (%s)" % (path, name))
            return original(path, *args, **kwargs)

        return guarded

    for name in ("write_file", "ensure_dir", "sym_link", "del_file"):
        setattr(util, name, guard(name, getattr(util, name)))


def run(user_data_path, root):
    with open(user_data_path, "rb") as f:
        blob = f.read()
    scratch = tempfile.mkdtemp(prefix="cloud-init-")
    cloud_dir = os.path.join(scratch, "var/lib/cloud")
    run_dir = os.path.join(scratch, "run/cloud-init")
    os.makedirs(cloud_dir)
    os.makedirs(run_dir)
    for name in ("instance-data.json", "instance-data-sensitive.json"):
        with open(os.path.join(run_dir, name), "w") as f:
            json.dump(INSTANCE_DATA, f)

    collector = Collector()
    logging.getLogger().addHandler(collector)
    logging.getLogger().setLevel(logging.DEBUG)
    try:
        return walk(blob, scratch, cloud_dir, run_dir, root, collector)
    finally:
        logging.getLogger().removeHandler(collector)
        shutil.rmtree(scratch, ignore_errors=True)


def walk(blob, scratch, cloud_dir, run_dir, root, collector):
    allowed[:] = [scratch, root]

    init = stages.Init(ds_deps=[])
    config = {"system_info": {"distro": "debian", "paths": {"cloud_dir": cloud_dir, "run_dir": run_dir}}}
    # Init forgets its configuration now and then (_reset) and reads it again from /etc/cloud: give it this one.
    init._read_cfg = lambda *_args, **_kwargs: copy.deepcopy(config)
    paths = init.paths
    init.datasource = UserDataSource({}, init.distro, paths, blob)
    paths.datasource = init.datasource  # what discovery would have set: the instance folder follows from it
    init.fetch()
    init.instancify()
    init.update()
    init.consume_data()

    # The cloud-config parts merged (and rendered), as the walker wrote them; empty when there were none.
    cloud_config_file = paths.get_ipath("cloud_config")
    text = ""
    if os.path.exists(cloud_config_file):
        with open(cloud_config_file, encoding="utf-8") as f:
            text = f.read()
    cloud_config = (util.load_yaml(text) or {}) if text.strip() else {}

    # What a boot does next (cmd/main.py main_init): a schema check that logs, and so degrades status, not raises.
    if text.strip():
        validate_cloudconfig_schema(config=cloud_config, strict=False, log_details=False, log_deprecations=True)

    schema_errors = []
    if text.strip():
        try:
            validate_cloudconfig_file(cloud_config_file, get_schema())
        except SchemaValidationError as e:
            schema_errors.append(str(e))

    written = []
    rooted = copy.deepcopy(cloud_config)
    for entry in rooted.get("write_files") or []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            written.append(entry["path"])
            entry["path"] = os.path.join(root, entry["path"].lstrip("/"))
    cloud = types.SimpleNamespace(paths=paths, distro=types.SimpleNamespace(default_owner="root:root"))
    # 22.4's handle() takes a logger before args; 25.1's does not.
    if "log" in inspect.signature(cc_write_files.handle).parameters:
        cc_write_files.handle("write_files", rooted, cloud, logging.getLogger("write_files"), [])
    else:
        cc_write_files.handle("write_files", rooted, cloud, [])

    return {
        "version": ci_version.version_string(),
        "warnings": collector.messages,
        "schema_errors": schema_errors,
        "cloud_config": cloud_config,
        "written": written,
    }


if __name__ == "__main__":
    confine_writes()
    results = []
    for arg in sys.argv[1:]:
        user_data, root = arg.split(":", 1)
        results.append(run(user_data, root))
    print(json.dumps(results, default=str))
