{
  # The CPython addon for the default Python (Debian's 3.11): build/Release/wsgi_bridge.node. The
  # targets are in native/addon/addon.gypi, which scripts/build.sh also includes from build/py3.N/ for
  # the addon of another CPython version (build/py3.N/wsgi_bridge.node).
  'includes': ['native/addon/addon.gypi'],
}
