"""The face detector (fjax.data.faces): the check that drops non-faces, the CNN choice."""
import numpy as np
import pytest

from data_builders.demo_forgeries import media
from fjax.data import faces


def test_astronaut_gives_exactly_one_face_her_own():
  """dlib's HOG finds her face and the mission patch on her sleeve; the patch (low score,
  landmarks that move with the box, no face for the CNN detector) is dropped."""
  image = media.astronaut()
  raw = faces.candidates(image)
  assert len(raw) == 2  # the detector itself still sees two
  (box, score), (patch, patch_score) = sorted(raw, key=lambda c: c[0][1])  # top first
  assert patch[1] > 300 and patch_score < faces.CONFIDENT <= score  # the sleeve, low score
  found = faces.detect_faces(image)
  assert len(found) == 1
  np.testing.assert_array_equal(found[0].box, box)
  assert found[0].score == score
  drift = faces.landmark_drift(image, box, found[0].landmarks)
  patch_drift = faces.landmark_drift(image, patch, faces.landmarks_in(image, patch))
  assert drift <= faces.STABLE < 1 < patch_drift  # landmarks hold to her face only
  assert not faces.cnn_confirms(image, patch)


def test_cnn_detector_finds_the_face_hog_finds():
  """`detector='cnn'` (dlib's MMOD detector) on insightface's 112 px Tom Hanks photo: one
  face, its box centred inside HOG's box; an unknown detector is one clear error."""
  image = faces.read_image(media.insightface_image('Tom_Hanks_54745.png'))
  (hog,), (cnn,) = faces.detect_faces(image), faces.detect_faces(image, detector='cnn')
  centre = (cnn.box[:2] + cnn.box[2:]) / 2
  assert (hog.box[:2] < centre).all() and (centre < hog.box[2:]).all()
  assert cnn.landmarks.shape == (68, 2) and cnn.score > 0
  with pytest.raises(ValueError, match="unknown face detector 'mtcnn'"):
    faces.detect_faces(image, detector='mtcnn')
