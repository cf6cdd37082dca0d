"""`python tests/gcs_emulator.py start --port=N ...`: gcp-storage-emulator's CLI, with the
`x-goog-generation` header on object downloads, which the real service sends and
tensorstore's GCS driver (Orbax's arrays) requires ("Malformed StorageGeneration"
without it); the emulator does not send it."""
import sys

from gcp_storage_emulator.handlers import objects

_download = objects.download


def download(request, response, storage, *args, **kwargs):
  try:
    obj = storage.get_file_obj(request.params['bucket_name'], request.params['object_id'])
    response['x-goog-generation'] = str(obj['generation'])
    response['x-goog-metageneration'] = str(obj.get('metageneration', '1'))
  except Exception:  # pylint: disable=broad-except
    pass  # missing object: the original handler answers 404
  return _download(request, response, storage, *args, **kwargs)


objects.download = download  # before the server module builds its routes from it

if __name__ == '__main__':
  from gcp_storage_emulator import __main__ as cli  # pylint: disable=g-import-not-at-top
  sys.exit(cli.main())
