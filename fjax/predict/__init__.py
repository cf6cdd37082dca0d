"""Runs a trained model of any kind on images and videos.

  python -m fjax.predict --workdir=DIR --input face.jpg clip.mp4 --output OUT [--frames 8]
  python -m fjax.predict --workdir=DIR --split test --output OUT [--limit 16]
  ... [--cam gradcam|scorecam]   (a CAM of the fake logit instead of the model's map)

Installed (`pip install -e .`), `fjax-predict ...` is the same command. --input takes
several paths after one flag, up to the next flag (or repeated: --input=a --input=b).

Faces are detected and cropped as the data builders crop them (dlib, square box x1.3).
Writes OUT/predictions.jsonl, one row per face (path, frame, face index: 0 = the largest
box, as the data sets number faces; box, fake probability, overlay file) or per frame
without a face (status "no face"), OUT/inputs.jsonl, one row per input (its fake
probability: a video's video-level score; status "ok" or "no face"), and for every face a
PNG: the face crop beside its localisation map overlaid as a heat map.

Pictures: a header line with the face's fake probability and what the map is, a title over
each panel, and a colour bar on the right whose label says the scale. The model's own map is
a fake probability per pixel and is drawn absolute (0 blue, 1 red: a map of 0.14 and one of
0.70 differ in colour); a CAM (--cam, fjax.cam) is normalised per face (1 = that face's
peak), its bar labelled so, and its rows carry "map": "gradcam" or "scorecam".

An input's score follows the run's evaluation rule (config.json `evaluation`, defaults
filled in for older workdirs), named in its row ("rule", "faceless"), so that a photo or a
video is scored as the test sets are. video_score 'mean_frame_max' (SBI's rule): a frame's
score is its highest face score, the input's the mean over its frames; a false detection
beside a real face cannot pull the frame's score below that of its true face (faces.py
also drops detections that are not confident and whose landmarks do not hold, such as the
mission patch on skimage's astronaut), and one fake face makes the frame fake.
'mean_faces' (the frame-level papers' rule): the mean over each frame's largest face, the
subject, as evaluation keeps it (every face still gets its row and overlay). Frames
without a face: faceless 'skip' leaves them out, and an input in which no face was found
at all gets status "no face" and fake probability null (evaluation scores such a video
0.5); 'half' counts each as a frame (with 'mean_faces': a row) scored
0.5, so an input without any face scores 0.5.

Overlay names: <stem>-<tag>_f<frame>_face<k>.png, where <tag> is the first 8 hex digits of
the SHA-1 of the input's absolute path (all 40 where two inputs of one call share the
first 8) and <stem> its file name without extension (cut to 80 characters). Names are thus
unique within a call (real/0001.png and fake/0001.png keep apart) and the same from call
to call. An input named twice (same absolute path) is predicted once.

Inputs are streamed: read one at a time, their faces queued into forward passes of exactly
--batch_size faces (the last one padded: one compiled shape; a batch may hold faces of
consecutive inputs), rows written as soon as their scores are known, in input order. At
most one input's frames and one batch of face crops are held at once.

A bad input (missing, empty, an unreadable image, an undecodable video) gets one row in each
file with status "skipped: <why>", and the other inputs go on. The exit status is 0 when
at least one input could be read (with or without faces); when none could, one error line,
exit status 1 and no result files are left behind.

Predictions of two calls are never mixed: predict refuses an OUT that already holds
predictions.jsonl, inputs.jsonl or overlay PNGs unless --overwrite is given, which first
deletes exactly those two files and the PNGs that OUT/predictions.jsonl lists, nothing
else (it refuses if overlay-named PNGs that no listing names remain).
"""

# The package, one job a file: inputs.py (reading images and videos, frame sampling,
# overlay name tags), scoring.py (faces via fjax.data.faces, batched scoring, each input's
# score by the evaluation rule: the --input call), pictures.py (overlays, colour bars),
# outputs.py (predictions.jsonl, inputs.jsonl, PNGs, --overwrite), split.py (the --split
# call), __main__.py (the command line). The run is opened by fjax.inference.load_run.
